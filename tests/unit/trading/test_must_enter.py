"""Which catalogue entry makes a project enter the venue (进场交易目录)."""

from __future__ import annotations

import pytest

from kernel.errors import InvalidArgument
from services.trading.domain.model import CatalogueEntry, entry_requiring_venue

YUAN = 100
WAN = 10_000 * YUAN

CATALOGUE = (
    CatalogueEntry("GP-01", "government_procurement", "货物公开招标", 400 * WAN, "b"),
    CatalogueEntry("GP-02", "government_procurement", "服务公开招标", 400 * WAN, "b"),
    CatalogueEntry("GP-03", "government_procurement", "分散采购限额", 100 * WAN, "b"),
    CatalogueEntry("CE-01", "construction", "施工", 400 * WAN, "b"),
    CatalogueEntry("CE-02", "construction", "重要设备、材料", 200 * WAN, "b"),
    CatalogueEntry("CE-03", "construction", "勘察、设计、监理", 100 * WAN, "b"),
    CatalogueEntry("LD-01", "land", "国有建设用地使用权出让", 0, "b"),
)


def _ruling(category: str, value_fen: int) -> str | None:
    entry = entry_requiring_venue(CATALOGUE, category=category, estimated_value_fen=value_fen)
    return entry.code if entry else None


def test_below_every_threshold_of_the_category_need_not_enter() -> None:
    assert _ruling("construction", 100 * WAN - 1) is None
    assert _ruling("government_procurement", 0) is None


def test_a_value_exactly_at_a_threshold_must_enter() -> None:
    # "100万元以上" includes 100万 itself.
    assert _ruling("construction", 100 * WAN) == "CE-03"
    assert _ruling("construction", 200 * WAN) == "CE-02"


def test_the_highest_threshold_not_above_the_value_decides() -> None:
    assert _ruling("construction", 200 * WAN - 1) == "CE-03"
    assert _ruling("construction", 399 * WAN) == "CE-02"
    assert _ruling("construction", 400 * WAN) == "CE-01"
    assert _ruling("construction", 10_000 * WAN) == "CE-01"


def test_equal_thresholds_go_to_the_lowest_code_whatever_the_order() -> None:
    reordered = tuple(reversed(CATALOGUE))
    entry = entry_requiring_venue(reordered, category="government_procurement",
                                  estimated_value_fen=500 * WAN)
    assert entry is not None
    assert entry.code == "GP-01"


def test_other_categories_never_decide() -> None:
    # 150万 of government procurement reaches GP-03 only, not CE-03 or LD-01.
    assert _ruling("government_procurement", 150 * WAN) == "GP-03"
    assert _ruling("property_rights", 10_000 * WAN) is None


def test_a_zero_threshold_takes_every_project_of_its_kind() -> None:
    assert _ruling("land", 0) == "LD-01"
    assert _ruling("land", 1) == "LD-01"


def test_a_negative_value_or_an_unknown_category_is_refused() -> None:
    with pytest.raises(InvalidArgument) as negative:
        _ruling("construction", -1)
    with pytest.raises(InvalidArgument) as unknown:
        _ruling("fishing_rights", 100 * WAN)
    assert [v.field for v in negative.value.violations] == ["estimated_value_fen"]
    assert [v.field for v in unknown.value.violations] == ["category"]


def test_a_catalogue_entry_keeps_to_the_known_categories() -> None:
    with pytest.raises(InvalidArgument):
        CatalogueEntry("XX-01", "fishing_rights", "x", 0, "b")
    with pytest.raises(InvalidArgument):
        CatalogueEntry("CE-09", "construction", "x", -1, "b")
