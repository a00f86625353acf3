"""A signed statement's body read strictly, field by field.

Every contract (approval, complaint, tender, …) reads its statements' facts the same way:
a missing field takes its empty value, a field of the wrong JSON type is refused with the
contract's own ``Malformed`` error, naming the field. Booleans are never whole numbers.
"""

from __future__ import annotations

from typing import Any


class StatementFields:
    """Typed readers over one statement body; each raises ``malformed`` on a wrong type."""

    def __init__(self, body: dict[str, Any], malformed: type[ValueError]) -> None:
        self._body = body
        self._malformed = malformed

    def text(self, key: str, required: bool = False) -> str:
        value = self._body.get(key, "")
        if not isinstance(value, str) or (required and not value):
            raise self._malformed(f"statement field {key} is missing or not text")
        return value

    def number(self, key: str) -> int:
        value = self._body.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._malformed(f"statement field {key} is not a whole number")
        return value

    def flag(self, key: str) -> bool:
        value = self._body.get(key, False)
        if not isinstance(value, bool):
            raise self._malformed(f"statement field {key} is not true or false")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self._body.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._malformed(f"statement field {key} is not a list of text")
        return tuple(value)

    def numbers(self, key: str) -> tuple[int, ...]:
        value = self._body.get(key, [])
        if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise self._malformed(f"statement field {key} is not a list of whole numbers")
        return tuple(value)
