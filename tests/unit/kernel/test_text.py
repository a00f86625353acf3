"""The text rules: control characters in any text, and what a name may hold."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from kernel.text import (
    BIDI_CONTROLS,
    ZERO_WIDTH,
    is_name_field,
    name_fault,
    normalise_name,
    text_fault,
)

#: Every character of Unicode category Cc (C0, DEL and C1: 65 of them).
CONTROLS = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cc"]
REFUSED_IN_TEXT = [c for c in CONTROLS if c not in "\t\n\r"]

#: Text people do write: Chinese with full-width punctuation, Latin with accents,
#: emoji, mathematical signs, a line break and a tab, ideographic spaces.
ORDINARY_TEXT = [
    "材料齐全，符合法定条件。", "《中华人民共和国行政许可法》第三十八条",
    "Crème brûlée — 5 € (≈ ¥39)", "出差\t三天\r\n返岗后复核", "👍 同意", "　首行缩进",
    "a" * 5000, "",
]
ORDINARY_NAMES = ["张三丰", "沈阳市市场监督管理局", "食品经营许可（新办）", "José Ñúñez",
                  "O'Brien-Smith", "欧阳 娜娜", "Zoë", "ﾊﾝｶｸ", "李·明"]


def test_the_table_of_controls_is_the_65_of_category_cc() -> None:
    assert len(CONTROLS) == 65
    assert "\x00" in CONTROLS and "\x7f" in CONTROLS and "\x85" in CONTROLS


@pytest.mark.parametrize("control", REFUSED_IN_TEXT, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("where", ["alone", "start", "middle", "end"])
def test_every_control_character_but_tab_and_line_breaks_is_refused_in_text(
        control: str, where: str) -> None:
    value = {"alone": control, "start": control + "同意", "middle": "同" + control + "意",
             "end": "同意" + control}[where]
    fault = text_fault(value)
    assert fault is not None
    assert f"U+{ord(control):04X}" in fault
    assert control not in fault  # the answer never echoes the character itself


@pytest.mark.parametrize("text", ORDINARY_TEXT)
def test_ordinary_text_passes(text: str) -> None:
    assert text_fault(text) is None


def test_the_fault_names_the_first_position() -> None:
    assert "position 2" in (text_fault("ab\x00c\x01") or "")


@pytest.mark.parametrize("field", ["name", "department_name", "item_name", "material_name"])
def test_names_are_told_by_their_field_name(field: str) -> None:
    assert is_name_field(field)


@pytest.mark.parametrize("field", ["names", "name_code", "rename", "opinion", "reason",
                                   "official_id", "basis"])
def test_other_fields_are_free_text(field: str) -> None:
    assert not is_name_field(field)


@pytest.mark.parametrize("name", ORDINARY_NAMES)
def test_ordinary_names_pass(name: str) -> None:
    assert name_fault(normalise_name(name)) is None


@pytest.mark.parametrize("character", sorted(ZERO_WIDTH | BIDI_CONTROLS),
                         ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("template", ["{}张三", "张{}三", "张三{}"])
def test_zero_width_and_bidi_characters_are_refused_in_names(
        character: str, template: str) -> None:
    fault = name_fault(template.format(character))
    assert fault is not None and f"U+{ord(character):04X}" in fault


def test_the_listed_zero_width_and_bidi_characters_are_those_of_the_rule() -> None:
    assert {f"U+{ord(c):04X}" for c in ZERO_WIDTH} == {
        "U+200B", "U+200C", "U+200D", "U+2060", "U+FEFF"}
    assert {f"U+{ord(c):04X}" for c in BIDI_CONTROLS} == {
        "U+061C", "U+200E", "U+200F", "U+202A", "U+202B", "U+202C", "U+202D", "U+202E",
        "U+2066", "U+2067", "U+2068", "U+2069"}


@pytest.mark.parametrize("control", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_no_control_character_stands_in_a_name_tab_and_line_breaks_included(
        control: str) -> None:
    assert name_fault(f"张{control}三") is not None


@pytest.mark.parametrize("blank", [" ", "   ", "\u3000", " \u3000 ", "\u00a0", "\u2003"])
def test_a_whitespace_only_name_is_refused(blank: str) -> None:
    assert "whitespace" in (name_fault(blank) or "")


def test_an_empty_name_is_left_to_the_proto_rules() -> None:
    assert name_fault("") is None


@pytest.mark.parametrize(("typed", "composed"), [
    ("Jose\u0301", "José"), ("Zoe\u0308", "Zoë"), ("\u1100\u1161", "가"),
    ("A\u030a", "Å"), ("\u212b", "Å"),  # ANGSTROM SIGN is canonically Å
])
def test_names_are_normalised_to_nfc(typed: str, composed: str) -> None:
    assert normalise_name(typed) == composed
    assert name_fault(normalise_name(typed)) is None


def test_a_name_fault_names_the_faulty_character_and_its_position_only() -> None:
    assert name_fault("张三\u200b李") == (
        "holds the zero-width character U+200B at position 2; a name may hold none")
    assert name_fault("a\u202eb") == (
        "holds the bidi control U+202E at position 1; a name may hold none")
    assert name_fault("ab\tc") == ("holds the control character U+0009 at position 2; a name "
                                   "may hold no control characters, tab and line breaks included")


def test_every_character_a_name_or_text_may_not_hold_is_unprintable() -> None:
    # The checks pass printable values at once (str.isprintable), without looking at
    # each character: that is right only while no refused character is printable.
    refused = ZERO_WIDTH | BIDI_CONTROLS | {
        chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cc"}
    assert not any(character.isprintable() for character in refused)


@pytest.mark.parametrize("value", ["张\u3000三", "Zoë\u00a0Smith", "line\u2028break"])
def test_unprintable_characters_that_are_allowed_still_pass(value: str) -> None:
    assert name_fault(value) is None and text_fault(value) is None
