"""kernel.handled_requests: a request id is claimed once, answered, or given back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import MetaData, create_engine
from sqlalchemy.exc import IntegrityError

from kernel.handled_requests import HandledRequest, HandledRequests, handled_requests_table

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
