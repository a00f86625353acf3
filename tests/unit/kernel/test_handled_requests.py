"""kernel.handled_requests: a request id is claimed once, answered, or given back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import MetaData, create_engine
from sqlalchemy.exc import IntegrityError

from kernel.handled_requests import (
    HandledRequest,
    HandledRequests,
    fingerprint,
    handled_requests_table,
    update_id,
)

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_claim_answer_retry_and_give_back() -> None:
    metadata = MetaData()
    table = handled_requests_table(metadata)
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as connection:
        requests = HandledRequests(connection, table)
        assert requests.get("desk", "r-1") is None
        requests.add(HandledRequest("desk", "r-1", "f" * 64, "CP-1", ""), received_at=AT)
        assert requests.get("desk", "r-1") == HandledRequest("desk", "r-1", "f" * 64,
                                                             "CP-1", "")
        # The same id of another system is another request.
        assert requests.get("other", "r-1") is None
        requests.answer("desk", "r-1", '{"stage": "handling"}')
        assert requests.get("desk", "r-1") == HandledRequest(
            "desk", "r-1", "f" * 64, "CP-1", '{"stage": "handling"}')
        requests.remove("desk", "r-1")
        assert requests.get("desk", "r-1") is None


def test_an_id_is_claimed_once() -> None:
    metadata = MetaData()
    table = handled_requests_table(metadata)
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as connection:
        requests = HandledRequests(connection, table)
        requests.add(HandledRequest("desk", "r-1", "a" * 64, "CP-1", ""), received_at=AT)
        with pytest.raises(IntegrityError):
            requests.add(HandledRequest("desk", "r-1", "b" * 64, "CP-2", ""), received_at=AT)


def test_an_update_id_binds_what_was_asked_by_a_mac_under_the_desks_key() -> None:
    """Temporal shows update ids in clear: what was asked enters as a MAC, so a decision's
    few possible outcomes cannot be tried against it without the desk's key (attack s17,
    re-check LOW C); the same request under the same key is the same update."""
    key, other_key = bytes(range(32)), bytes(32)
    asked = fingerprint("DecideExtension", official="OF-0001", case="CP-20261201-000001",
                        granted=True, days=5)
    other = fingerprint("DecideExtension", official="OF-0001", case="CP-20261201-000001",
                        granted=False, days=5)
    request = "6f1c7a52-3d0b-4b8e-9a43-1f0e2d3c4b5a"

    first = update_id("decide_extension", request, asked, key=key)
    assert first == update_id("decide_extension", request, asked, key=key)
    assert first.startswith(f"decide_extension/{request}/")
    assert first != update_id("decide_extension", request, other, key=key)
    assert first != update_id("decide_extension", request, asked, key=other_key)
    assert asked[:16] not in first  # not the plain fingerprint a reader could recompute
