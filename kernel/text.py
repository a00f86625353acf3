"""What text a request may carry, decided before any rule of its own runs.

Free text (an opinion, a reason, a code, a token) may hold any character
except the control characters of Unicode category Cc — NUL, ESC, DEL, the C1
range — which no person types and which PostgreSQL cannot even store (NUL);
TAB, LF and CR are let through, since a person's text may hold them.

Names are stricter. A field holds a name — of a person, an approval item, a
material, a department, a category — when its field name is ``name`` or ends
in ``_name`` (``department_name``, ``item_name``); the decision is made by
field name alone so that a field added later follows the rule without anyone
remembering to list it. A name is normalised to NFC (so "é" typed as e + a
combining accent and "é" typed at once are the same name) and refused when it
is whitespace only, or holds a zero-width character, a bidi control (both
make two different names look the same on screen, or hide text), or a TAB,
LF or CR. An empty name is left to the proto's own rules: some requests leave
a name empty on purpose.
"""

from __future__ import annotations

import unicodedata

#: Control characters a person's free text may hold.
FREE_TEXT_CONTROLS = frozenset("\t\n\r")

#: Characters that take no space on screen: ZERO WIDTH SPACE, NON-JOINER, JOINER,
#: WORD JOINER and the BYTE ORDER MARK (ZERO WIDTH NO-BREAK SPACE).
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")

#: Characters that reorder text on screen: ARABIC LETTER MARK, LRM, RLM, the
#: embeddings and overrides LRE..RLO (U+202A-U+202E) and the isolates LRI..PDI
#: (U+2066-U+2069).
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f" + "".join(map(chr, range(0x202A, 0x202F)))
    + "".join(map(chr, range(0x2066, 0x206A))))


def is_name_field(field_name: str) -> bool:
    """Whether a field of this name holds a name (see the module's docstring)."""
    return field_name == "name" or field_name.endswith("_name")


def _code_point(character: str) -> str:
    return f"U+{ord(character):04X}"


def _where(character: str, position: int) -> str:
    return f"{_code_point(character)} at position {position}"


def text_fault(value: str) -> str | None:
    """Why ``value`` may not stand in a text field, or None when it may.

    The answer names the offending character by code point and position,
    never the value itself, so it may be logged and sent back.
    """
    if value.isprintable():
        # Printable text holds no character of category Cc (the usual case, checked in C).
        return None
    for position, character in enumerate(value):
        if character not in FREE_TEXT_CONTROLS and unicodedata.category(character) == "Cc":
            return (f"holds the control character {_code_point(character)} at position "
                    f"{position}; text may hold no control characters except tab, line "
                    "feed and carriage return")
    return None


def normalise_name(value: str) -> str:
    """The name in Unicode normalisation form C."""
    return unicodedata.normalize("NFC", value)


def name_fault(value: str) -> str | None:
    """Why ``value`` may not stand as a name, or None when it may.

    ``value`` should already be NFC (``normalise_name``). Like
    ``text_fault``, the answer never repeats the value.
    """
    if value and not value.strip():
        return "is whitespace only; a name needs at least one visible character"
    if value.isprintable():
        # Zero-width characters and bidi controls are of category Cf, which, like Cc, is
        # not printable: a printable name holds none of them (the usual case, checked in C).
        return None
    for position, character in enumerate(value):
        # The position is put into words only for the faulty character: building it for
        # every character cost more than the checks themselves.
        if character in ZERO_WIDTH:
            return (f"holds the zero-width character {_where(character, position)}; "
                    "a name may hold none")
        if character in BIDI_CONTROLS:
            return f"holds the bidi control {_where(character, position)}; a name may hold none"
        if unicodedata.category(character) == "Cc":
            return (f"holds the control character {_where(character, position)}; a name may "
                    "hold no control characters, tab and line breaks included")
    return None
