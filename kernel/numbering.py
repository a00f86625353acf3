"""Numbers people read: case numbers that count per day (``AP-…``, ``CP-…``).

The running number itself is taken in the service's database
(``kernel.db.RunningNumbers``); this module only shapes it, and imports no
framework, so the services' domain modules may use it.
"""

from __future__ import annotations

from datetime import date


def day_number(prefix: str, day: date, sequence: int, *, what: str) -> str:
    """``<prefix>-YYYYMMDD-NNNNNN``: the day's running number ``sequence``, from 1."""
    if not 1 <= sequence <= 999_999:
        raise ValueError(f"{what} sequence {sequence} is out of range for one day")
    return f"{prefix}-{day:%Y%m%d}-{sequence:06d}"
