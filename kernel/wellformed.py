"""What every request must be before its proto's own rules look at it.

The gRPC interceptor calls ``check_request`` on each request right after it
is parsed. It walks every field that is set — nested messages, repeated
fields, map keys and values — by the message's descriptor, so a new RPC or
field is covered without being listed anywhere, and

* holds every string to the text rules of ``kernel.text`` (no control
  characters; names NFC-normalised in place, then no whitespace-only,
  zero-width, bidi-control or line-breaking names);
* holds every ``google.protobuf.Timestamp`` and ``Duration`` to the ranges
  their own definitions give (years 1 to 9999, ±10,000 years, nanos in
  range): protovalidate compares such values without complaint, but they
  cannot be turned into a datetime or stored.

Every fault found is listed, by field path (``materials[2].name``,
``details["key"]``), in one INVALID_ARGUMENT carrying a
``google.rpc.BadRequest``; nothing of the request runs.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from kernel.errors import FieldViolation, InvalidArgument
from kernel.text import is_name_field, name_fault, normalise_name, text_fault

TIMESTAMP = "google.protobuf.Timestamp"
DURATION = "google.protobuf.Duration"

#: 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range google.protobuf.Timestamp allows.
MIN_TIMESTAMP_SECONDS = -62_135_596_800
MAX_TIMESTAMP_SECONDS = 253_402_300_799
#: About ±10,000 years, the range google.protobuf.Duration allows.
MAX_DURATION_SECONDS = 315_576_000_000
_NANOS = 999_999_999


def timestamp_fault(seconds: int, nanos: int) -> str | None:
    """Why a Timestamp of these parts is not one, or None when it is."""
    if not MIN_TIMESTAMP_SECONDS <= seconds <= MAX_TIMESTAMP_SECONDS:
        return "is not a time between the years 1 and 9999"
    if not 0 <= nanos <= _NANOS:
        return "has nanos outside 0..999999999"
    return None


def duration_fault(seconds: int, nanos: int) -> str | None:
    """Why a Duration of these parts is not one, or None when it is."""
    if not -MAX_DURATION_SECONDS <= seconds <= MAX_DURATION_SECONDS:
        return "is not a duration within ±10,000 years"
    if not -_NANOS <= nanos <= _NANOS:
        return "has nanos outside -999999999..999999999"
    if (seconds > 0 > nanos) or (seconds < 0 < nanos):
        return "has seconds and nanos of opposite signs"
    return None


def check_request(request: Message) -> None:
    """Normalise the names of ``request`` in place; refuse it if any text or time is bad.

    Raises InvalidArgument naming every bad field.
    """
    faults: list[FieldViolation] = []
    _walk(request, "", faults)
    if faults:
        summary = "; ".join(f"{v.field}: {v.description}" for v in faults[:5])
        raise InvalidArgument(f"invalid request: {summary}", violations=faults)


#: What ``_walk`` does with a field of each kind.
_OTHER, _MAP, _REPEATED, _MESSAGE, _TEXT, _NAME = range(1, 7)
#: Each field's kind, worked out from its descriptor on its first visit (a few hundred
#: fields at most: every service's protos). Asking the descriptor on every call (its
#: options above all) cost more than the checks of a request's text themselves.
_KINDS: dict[FieldDescriptor, int] = {}


def _kind(field: FieldDescriptor) -> int:
    kind = _KINDS.get(field)
    if kind is None:
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            kind = _MAP
        elif field.is_repeated:
            kind = _REPEATED
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            kind = _MESSAGE
        elif field.type == FieldDescriptor.TYPE_STRING and not field.is_extension:
            kind = _NAME if is_name_field(field.name) else _TEXT
        else:
            kind = _OTHER
        _KINDS[field] = kind
    return kind


def _walk(message: Message, prefix: str, faults: list[FieldViolation]) -> None:
    kind = message.DESCRIPTOR.full_name
    if kind in (TIMESTAMP, DURATION):
        parts = {field.name: value for field, value in message.ListFields()}
        fault = (timestamp_fault if kind == TIMESTAMP else duration_fault)(
            parts.get("seconds", 0), parts.get("nanos", 0))
        if fault is not None:
            faults.append(FieldViolation(prefix.rstrip(".") or "(message)", fault))
        return
    for field, value in message.ListFields():
        field_kind = _kind(field)
        if field_kind == _OTHER or (field_kind == _TEXT and value.isprintable()):
            # Printable text holds no control character: text_fault would find none.
            continue
        path = prefix + field.name
        if field_kind == _MAP:
            entry = field.message_type
            assert entry is not None  # a map's field has its entry message type
            _walk_map(field.name, entry.fields_by_name["value"], value, path, faults)
        elif field_kind == _REPEATED:
            for index in range(len(value)):
                _visit(field, value, index, f"{path}[{index}]", faults)
        elif field_kind == _MESSAGE:
            _walk(value, path + ".", faults)
        else:
            checked = _string(field.name, value, path, faults)
            if checked != value:
                setattr(message, field.name, checked)


def map_entry_path(path: str, key: object) -> str:
    """The field path of one entry of a map: ``details["key"]``, ``counts[3]``.

    A string key is written as a JSON string with everything past ASCII
    escaped, so a path never carries a control or bidi character.
    """
    return f"{path}[{json.dumps(key) if isinstance(key, str) else key}]"


def _walk_map(name: str, value_field: FieldDescriptor, entries: Any, path: str,
              faults: list[FieldViolation]) -> None:
    for key in list(entries):
        label = map_entry_path(path, key)
        if isinstance(key, str) and (fault := text_fault(key)) is not None:
            faults.append(FieldViolation(label, f"its key {fault}"))
        _visit(value_field, entries, key, label, faults, name_of=name)


def _visit(field: FieldDescriptor, container: Any, key: Any, path: str,
           faults: list[FieldViolation], *, name_of: str = "") -> None:
    """Check ``container[key]``, an element of a repeated field or a map's value."""
    item = container[key]
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        _walk(item, path + ".", faults)
    elif field.type == FieldDescriptor.TYPE_STRING:
        checked = _string(name_of or field.name, item, path, faults)
        if checked != item:
            container[key] = checked


def _string(field_name: str, value: str, path: str, faults: list[FieldViolation]) -> str:
    """``value`` as it is to be kept (a name in NFC), recording its fault if it has one."""
    if is_name_field(field_name):
        value = normalise_name(value)
        fault = name_fault(value)
    else:
        fault = text_fault(value)
    if fault is not None:
        faults.append(FieldViolation(path, fault))
    return value
