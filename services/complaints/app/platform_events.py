"""Events for the origin platforms (a case's status changed, a case was replied).

The webhooks work (services/complaints/app/webhooks.py, on its own branch)
owns the ``platform_events`` table, its delivery and its pull; this module is
the stand-in the handling records call until it lands, with the very
signature the plan fixes: ``emit_platform_event(uow, *, platform_id,
case_number, event_type, data, at) -> event id``. It records nothing and
returns "" (no event to deliver). At the merge, the import below is pointed
at the real one.
"""

from __future__ import annotations

from datetime import datetime

from services.complaints.db.repository import ComplaintsUnitOfWork

STATUS_CHANGED = "complaint.status_changed"
REPLIED = "complaint.replied"


def emit_platform_event(uow: ComplaintsUnitOfWork, *, platform_id: str, case_number: str,
                        event_type: str, data: dict[str, str], at: datetime) -> str:
    """Record an event for ``platform_id`` in ``uow``'s transaction; its stable id ("" here)."""
    del uow, platform_id, case_number, event_type, data, at
    return ""
