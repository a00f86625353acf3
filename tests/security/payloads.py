"""Finding every payload in a Temporal message, for tests that check what Temporal stores."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload

#: Fields Temporal keeps in clear by design, codec or not: search attributes and the
#: workflow's summary and details (user metadata). govhall puts no personal data there.
CLEAR_BY_DESIGN = frozenset({"search_attributes", "user_metadata"})


#: The marker the SDK's core records for ``workflow.patched``: it holds the patch id
#: only, and core writes and reads it without the data converter.
PATCH_MARKER = "core_patch"


def stored_payloads(message: Message, path: str = "") -> Iterator[tuple[str, Payload]]:
    """``(where, payload)`` for every payload in ``message`` outside the fields in clear."""
    if getattr(message, "marker_name", None) == PATCH_MARKER:
        return
    for field, value in message.ListFields():
        if field.name in CLEAR_BY_DESIGN or field.message_type is None:
            continue
        where = f"{path}.{field.name}" if path else field.name
        items: list[Any]
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif field.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            if isinstance(item, Payload):
                yield where, item
            elif isinstance(item, Message):
                yield from stored_payloads(item, where)
