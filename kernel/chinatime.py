"""China's time zone, named once.

Working days, case and certificate numbers, acceptance dates and the end of a
deadline's day all follow the date in China. The zone comes from the IANA
database (``Asia/Shanghai``; the ``tzdata`` package supplies it where the
system has none) rather than a hand-written UTC+8 offset.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")


def china_date(instant: datetime) -> date:
    """The date in China at ``instant``, which must carry its time zone."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("an instant must carry its time zone to have a date in China")
    return instant.astimezone(CHINA).date()
