"""The intake's group commit is made with the linger it is given, the measured default
otherwise (services/complaints/app/cases.py INTAKE_LINGER_SECONDS)."""

from __future__ import annotations

from typing import Any, cast

from services.complaints.app.cases import INTAKE_LINGER_SECONDS, group_intake


def _never() -> Any:
    raise AssertionError("no batch is written here")


def test_the_intake_lingers_as_measured_by_default_and_as_told_otherwise() -> None:
    cipher = cast(Any, object())
    assert group_intake(writing=_never, cipher=cipher).linger_seconds == INTAKE_LINGER_SECONDS
    assert INTAKE_LINGER_SECONDS == 0.001  # measured: batches of 7, not 3.8 (cases.py)
    assert group_intake(writing=_never, cipher=cipher,
                        linger_seconds=0.002).linger_seconds == 0.002
