"""A workflow history as readable text, every payload decoded, for searching personal data.

The raw history holds payloads, update arguments, summaries, details and
failure attributes encrypted by the codec: a search there cannot find what
was encrypted. ``decoded_history_text`` decodes each payload through the
client's data converter (its codec) and returns the whole history as text:
the events as JSON (failure messages, search attribute keys, identities)
followed by every payload's decoded content, JSON with characters unescaped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from google.protobuf import json_format
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.client import Client

from kernel.codec import UNDECODABLE


def _payloads(message: Message) -> Iterator[Payload]:
    """Every Payload anywhere inside ``message`` (nested, repeated and map fields)."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif isinstance(value, Message):
            items = [value]
        else:  # a repeated field
            items = list(value)
        for item in items:
            if not isinstance(item, Message):
                continue
            if isinstance(item, Payload):
                yield item
            else:
                yield from _payloads(item)


def _readable(payload: Payload) -> str:
    data = payload.data.decode("utf-8", errors="replace")
    try:
        return json.dumps(json.loads(data), ensure_ascii=False)
    except json.JSONDecodeError:
        return data


async def decoded_history_text(client: Client, events: Iterable[HistoryEvent]) -> str:
    """A history's ``events`` as text, every payload decoded through ``client``'s data
    converter."""
    history = History(events=list(events))
    codec = client.data_converter.payload_codec
    assert codec is not None, "the client must carry govhall's codec"
    found = list(_payloads(history))
    assert found, "a history without payloads: nothing was decoded"
    decoded = await codec.decode(found)
    # A payload the codec could not decode would hide what it holds.
    assert all(p.metadata.get("encoding") != UNDECODABLE for p in decoded)
    return "\n".join([json_format.MessageToJson(history, ensure_ascii=False),
                      *(_readable(p) for p in decoded)])
