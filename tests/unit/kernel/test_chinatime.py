"""China's time zone, named once in kernel.chinatime."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from kernel.chinatime import CHINA, china_date

ROOT = Path(__file__).resolve().parents[3]
#: The type 1 approval workflow, frozen as it ran so its recorded histories replay.
FROZEN = {"workflows/legacy/approval_v1.py"}


def test_the_date_in_china_turns_at_midnight_there() -> None:
    assert china_date(datetime(2026, 3, 1, 15, 59, 59, tzinfo=UTC)) == date(2026, 3, 1)
    assert china_date(datetime(2026, 3, 1, 16, 0, tzinfo=UTC)) == date(2026, 3, 2)
    assert china_date(datetime(2026, 3, 2, 0, 0, tzinfo=CHINA)) == date(2026, 3, 2)


def test_a_naive_datetime_has_no_date_in_china() -> None:
    with pytest.raises(ValueError, match="time zone"):
        china_date(datetime(2026, 3, 1, 16, 0))


def test_the_zone_is_the_iana_one() -> None:
    assert CHINA.key == "Asia/Shanghai"
    assert datetime(2026, 7, 1, tzinfo=CHINA).utcoffset() == \
        datetime(2026, 1, 1, tzinfo=CHINA).utcoffset()


def _hand_written_offsets(path: Path) -> list[int]:
    """Lines building an eight-hour offset: ``timedelta(hours=8)`` and the like."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "timedelta" and any(
                k.arg == "hours" and isinstance(k.value, ast.Constant) and k.value.value == 8
                for k in node.keywords):
            found.append(node.lineno)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and "+08:00" in node.value:
            found.append(node.lineno)
    return found


def test_no_module_writes_chinas_offset_by_hand() -> None:
    offenders = []
    for folder in ("kernel", "services", "workflows", "deploy", "tools", "bench", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = str(path.relative_to(ROOT))
            if relative in FROZEN or path == Path(__file__).resolve():
                continue
            offenders += [f"{relative}:{line}" for line in _hand_written_offsets(path)]
    assert offenders == [], "use kernel.chinatime instead: " + ", ".join(offenders)
