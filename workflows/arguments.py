"""Is a signal's or an update's argument what its handler was written for?

Temporal hands a handler whatever the sender put in the payload: a bare client can send a
JSON null (the ``binary/null`` payload skips the type hint altogether) or, through a field
typed ``Any``, anything at all. A signal handler that trips on it fails the workflow task,
and the task fails again on every retry: the workflow is wedged. So every signal handler
drops an argument of the wrong shape (with a log line) and every update validator refuses
one at once. Checking adds no workflow command, so recorded histories replay unchanged.
"""

from __future__ import annotations

import dataclasses
import types
from datetime import datetime
from typing import Any, Union, get_args, get_origin, get_type_hints


def well_typed(value: object, hint: Any) -> bool:
    """True when ``value`` matches ``hint``: a dataclass (every field checked), a dict, list
    or tuple of checked items, a union, ``Any``, or a plain class. A bool is not an int."""
    if hint is Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        return any(well_typed(value, option) for option in get_args(hint))
    if origin is dict:
        keys, values = get_args(hint) or (Any, Any)
        return isinstance(value, dict) and all(
            well_typed(k, keys) and well_typed(v, values) for k, v in value.items())
    if origin in (list, frozenset, set):
        (item,) = get_args(hint) or (Any,)
        return isinstance(value, origin) and all(well_typed(v, item) for v in value)
    if origin is tuple:
        args = get_args(hint)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(well_typed(v, args[0]) for v in value)
        return len(args) == len(value) and all(map(well_typed, value, args))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):
            return False
        hints = get_type_hints(hint)
        return all(well_typed(getattr(value, f.name), hints[f.name])
                   for f in dataclasses.fields(hint))
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is datetime:
        return isinstance(value, datetime)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True
