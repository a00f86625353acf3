"""kernel.canonical against rfc8785 itself: the same bytes, or the same error, always."""

from __future__ import annotations

import enum
import random
from collections import OrderedDict
from typing import Any

import pytest
import rfc8785

from kernel.canonical import canonical_json, is_plain

#: Characters where JSON writers differ if they differ at all.
_CHARS = ["a", "Z", "0", " ", '"', "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x00", "\x01",
          "\x1f", "\x7f", "\x80", "\xa0", "é", "\u2028", "\u2029", "\ufeff", "\uffff", "中",
          "标", "😀", "\U0010ffff", "\ud800", "\udfff", "<", ">", "&", "'"]
_KEYS = ["a", "b", "B", "aa", "a\x00", "_", "~", "\x7f", "0", "", "price_fen", "z" * 30,
         "é", "中", "😀", "\ufb33", "\ue000", "\ud7ff"]
_NUMBERS: list[Any] = [0, 1, -1, 2**53 - 1, -(2**53 - 1), 2**53, -(2**53), 2**64, 10**30,
                       0.0, -0.0, 0.5, 1e21, 1e-7, 123.456, 5e-324, 1.7976931348623157e308,
                       float("inf"), float("nan"), True, False, None]


def _text(rng: random.Random, ascii_only: bool) -> str:
    pool = _CHARS[:16] if ascii_only else _CHARS
    return "".join(rng.choice(pool) for _ in range(rng.randint(0, 8)))


def _document(rng: random.Random, depth: int, plain: bool) -> Any:
    """A random JSON-ish value; ``plain`` keeps it mostly on the fast path."""
    roll = rng.random()
    if depth >= 4 or roll < 0.35:
        scalar = rng.random()
        if scalar < 0.5:
            return _text(rng, ascii_only=False) if not plain or rng.random() < 0.9 \
                else _text(rng, ascii_only=True)
        if plain:
            return rng.choice([0, 1, -7, 2**53 - 1, -(2**53 - 1), True, False, None,
                               rng.randint(-10**9, 10**9)])
        return rng.choice(_NUMBERS)
    if roll < 0.65:
        return [_document(rng, depth + 1, plain) for _ in range(rng.randint(0, 5))]
    keys = _KEYS[:12] if plain else _KEYS
    return {rng.choice(keys) if rng.random() < 0.7 else _text(rng, ascii_only=plain):
            _document(rng, depth + 1, plain) for _ in range(rng.randint(0, 6))}


def _same(value: Any) -> None:
    """canonical_json(value) is rfc8785.dumps(value), byte for byte or error for error."""
    try:
        expected: bytes | BaseException = rfc8785.dumps(value)
    except Exception as error:  # whatever rfc8785 raises, the same is due
        expected = error
    if isinstance(expected, bytes):
        assert canonical_json(value) == expected
    else:
        with pytest.raises(type(expected)) as raised:
            canonical_json(value)
        assert str(raised.value) == str(expected)


@pytest.mark.parametrize("plain", [True, False])
def test_random_documents_give_rfc8785s_bytes_or_its_error(plain: bool) -> None:
    rng = random.Random(8785 + plain)
    fast = 0
    for _ in range(3000):
        value = {"body": _document(rng, 0, plain)}
        fast += is_plain(value)
        _same(value)
    # Both paths were exercised: the plain lot mostly fast, the other mostly not.
    assert (fast > 1500) if plain else (fast < 1500)


@pytest.mark.parametrize("value", [
    {}, [], "", 0, None, True, {"": ""},
    {"s": "".join(_CHARS[:-2])},  # every escape and multi-byte character, no surrogate
    {"s": "\ud800"}, {"s": "a\udfffb"}, ["\ud83d\ude00"],  # lone and paired surrogates
    {"\ud800": 1},
    {"n": 2**53 - 1}, {"n": -(2**53 - 1)}, {"n": 2**53}, {"n": -(2**53)}, [10**400],
    {"f": 1.0}, {"f": 0.1}, {"f": -0.0}, {"f": 1e21}, {"f": 1e-7}, {"f": float("nan")},
    {"f": float("-inf")},
    {"b": True, "B": False, "a": None, "A": [1, "x"]},
    {"é": 1, "e": 2, "z": 3},  # a non-ASCII key
    {"\ue000": 1, "😀": 2},  # UTF-16 order differs from code point order here
    {1: "an int key"}, {("a",): 1}, {None: 1},
    ("a", ("b", 1)), {"t": ("tuple", 2)},
    {"set": {1, 2}}, {"bytes": b"x"}, {"obj": object()},
    OrderedDict([("b", 1), ("a", 2)]),
    {"nested": [[[[[[[[[["deep"]]]]]]]]]]},
    {"bids": [{"bidder_id": f"BD-{n:04d}", "price_fen": 400_000_000 + 7919 * n,
               "valid": n % 3 != 0, "reason": "" if n % 3 else "unrevealed"}
              for n in range(1000)]},
])
def test_edge_documents_give_rfc8785s_bytes_or_its_error(value: Any) -> None:
    _same(value)


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def test_subclasses_of_str_int_and_dict_go_the_rfc8785_way() -> None:
    class Body(dict[str, Any]):
        pass

    for value in ({"c": Colour.RED}, {"l": Level.HIGH}, Body(a=1), {Colour.RED: 1}):
        assert not is_plain(value)
        _same(value)


def test_nesting_past_the_fast_paths_depth_and_cycles_fail_as_rfc8785_does() -> None:
    deep: Any = "x"
    for _ in range(100):
        deep = [deep]
    assert not is_plain(deep)
    _same(deep)
    cycle: list[Any] = []
    cycle.append(cycle)
    _same(cycle)
    very: Any = "x"
    for _ in range(100_000):
        very = {"k": very}
    _same(very)


def test_a_plain_document_takes_the_fast_path_and_floats_or_big_ints_do_not() -> None:
    body = {"tender_no": "TD-1", "bids": [{"bidder_id": "BD-1", "valid": True,
                                            "price_fen": 2**53 - 1, "note": "投标 😀"}]}
    assert is_plain(body)
    assert not is_plain(body | {"ratio": 0.5})
    assert not is_plain(body | {"big": 2**53})
    assert not is_plain(body | {"中": 1})
    # The range is checked inline for a member of an object or an array, at both ends.
    assert is_plain([2**53 - 1, -(2**53 - 1), {"n": -(2**53 - 1)}])
    for big in (2**53, -(2**53)):
        assert not is_plain([1, big])
        assert not is_plain({"a": 1, "n": big})
        _same([1, big])
        _same({"n": big})
