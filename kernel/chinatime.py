"""China's time: working days and dates of the center are those of Asia/Shanghai."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")


def china_date(instant: datetime) -> date:
    """The calendar date in China at ``instant`` (which must carry a time zone)."""
    if instant.tzinfo is None:
        raise ValueError("an instant must carry a time zone")
    return instant.astimezone(CHINA).date()
