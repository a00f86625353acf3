"""The kinds of events the origin platforms are told of (a case's status changed, a case
was replied); services/complaints/app/webhooks.py records, delivers and pages them."""

from __future__ import annotations

from services.complaints.app.webhooks import emit_platform_event

STATUS_CHANGED = "complaint.status_changed"
REPLIED = "complaint.replied"

__all__ = ["REPLIED", "STATUS_CHANGED", "emit_platform_event"]
