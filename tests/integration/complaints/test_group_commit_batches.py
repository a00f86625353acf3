"""Pushes taken in together are written in one transaction: an in-batch duplicate or a
refused push does not make the batch fail and fall back to one push at a time (the
answers would be the same; the batching would be gone).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from structlog.testing import capture_logs

from tests.integration.complaints.test_group_commit import (
    Database,
    _push,
    database,  # noqa: F401
)

# ---- group commit: one transaction, not every push alone ---------------------------------

def _taken_alone(logs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [entry for entry in logs if entry.get("event") == "complaint.batch_taken_alone"]


async def test_identical_and_refused_pushes_do_not_make_the_batch_fall_back_to_one_by_one(
        database: Database) -> None:  # noqa: F811
    with capture_logs() as logs:
        answers = database.submit([_push("GC-1"), _push("GC-1"),
                                   _push("GC-2", category_code="NO-SUCH"), _push("GC-3")])
    assert _taken_alone(logs) == []
    assert [type(a).__name__ for a in answers] == ["Submitted", "Submitted",
                                                   "InvalidArgument", "Submitted"]
    assert database.cases() == [("12345", "GC-1"), ("12345", "GC-3")]
