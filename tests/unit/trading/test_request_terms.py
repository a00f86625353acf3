"""What a signed act under a request id asks (workflows/request_terms.py), and the digest
its update id binds (services/trading/app/request_ids.py ``terms_sha256``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.trading.app.request_ids import terms_sha256
from workflows.listing_contract import StatementKind, listing_statement_body
from workflows.request_terms import differing_terms, other_terms, request_key

AT = datetime(2026, 12, 1, 8, tzinfo=UTC)
REQUEST = "6f1c7a52-3d0b-4b8e-9a43-1f0e2d3c4b5a"


def _bid(amount: int, *, at: datetime = AT, request_id: str = REQUEST,
         bidder: str = "BD-0001") -> dict[str, object]:
    return listing_statement_body(kind=StatementKind.BID, listing_no="LS-20261201-000001",
                                  system="bidder-system-bd0001", issued_at=at,
                                  request_id=request_id, bidder_id=bidder, amount_fen=amount)


def test_the_same_request_signed_again_asks_the_same_terms() -> None:
    first, again = _bid(100), _bid(100, at=AT + timedelta(minutes=3))
    assert first != again
    assert differing_terms(first, again) == []
    assert other_terms(first, again) == ""
    assert terms_sha256(first) == terms_sha256(again)


def test_another_content_under_the_request_id_names_the_terms_that_differ() -> None:
    first, other = _bid(100), _bid(200, bidder="BD-0002")
    assert differing_terms(first, other) == ["amount_fen", "bidder_id"]
    refused = other_terms(first, other)
    assert f"request id {REQUEST} was used for a listing bid with other terms " \
        "(amount_fen, bidder_id)" in refused
    assert "200" not in refused and "100" not in refused
    assert terms_sha256(first) != terms_sha256(other)


def test_the_request_key_is_the_kind_the_system_and_the_request_id() -> None:
    assert request_key(_bid(100)) == f"listing_bid/bidder-system-bd0001/{REQUEST}"
    assert request_key(_bid(100, request_id="")) == ""
    # The digest leaves the request id out: the update id names it already.
    assert terms_sha256(_bid(100)) == terms_sha256(_bid(100, request_id="other"))
