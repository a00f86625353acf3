"""Gap test (s17 test reading): the well-formedness walk's per-field cache is per field, not
per field name.

``_KINDS`` is keyed by the field's descriptor. Keyed by the field's name instead, every
test stayed green: no two request messages share a field name of another kind today. Two
messages that do (a Timestamp ``issued_at`` and a text ``issued_at``) must each be walked
as what they are, whichever comes first.
"""

from __future__ import annotations

import pytest
from google.protobuf.message import Message

from govhall.intake.v1 import intake_pb2 as intake
from kernel.errors import InvalidArgument
from kernel.wellformed import MAX_TIMESTAMP_SECONDS, check_request


def _text() -> Message:
    return intake.PublicDecision(issued_at="2026-01-05\x00")


def _time() -> Message:
    notice = intake.Notice()
    notice.issued_at.seconds = MAX_TIMESTAMP_SECONDS + 1
    return notice


@pytest.mark.parametrize("first_text", [True, False])
def test_a_field_name_of_two_kinds_is_walked_as_each_field_is(first_text: bool) -> None:
    faults: list[str] = []
    for message in ((_text(), _time()) if first_text else (_time(), _text())):
        with pytest.raises(InvalidArgument) as refused:
            check_request(message)
        faults.extend(f"{v.field}: {v.description}" for v in refused.value.violations)
    assert sorted(faults) == sorted([
        "issued_at: holds the control character U+0000 at position 10; text may hold no "
        "control characters except tab, line feed and carriage return",
        "issued_at: is not a time between the years 1 and 9999"])
