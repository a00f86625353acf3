"""What a signed act under a request id asks (workflows/request_terms.py), and the keyed
digest its update id binds (services/trading/app/request_ids.py ``terms_digest``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.trading.app.request_ids import terms_digest, terms_sha256
from workflows import tender_contract as tc
from workflows.listing_contract import StatementKind, listing_statement_body
from workflows.request_terms import (
    differing_terms,
    other_terms,
    request_key,
)

AT = datetime(2026, 12, 1, 8, tzinfo=UTC)
REQUEST = "6f1c7a52-3d0b-4b8e-9a43-1f0e2d3c4b5a"
KEY = bytes(range(32))


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
    assert terms_digest(first, key=KEY) == terms_digest(again, key=KEY)


def test_another_content_under_the_request_id_names_the_terms_that_differ() -> None:
    first, other = _bid(100), _bid(200, bidder="BD-0002")
    assert differing_terms(first, other) == ["amount_fen", "bidder_id"]
    refused = other_terms(first, other)
    assert f"request id {REQUEST} was used for a listing bid with other terms " \
        "(amount_fen, bidder_id)" in refused
    assert "200" not in refused and "100" not in refused
    assert terms_digest(first, key=KEY) != terms_digest(other, key=KEY)


def test_the_request_key_is_the_kind_the_system_and_the_request_id() -> None:
    assert request_key(_bid(100)) == f"listing_bid/bidder-system-bd0001/{REQUEST}"
    assert request_key(_bid(100, request_id="")) == ""
    # The digest leaves the request id out: the update id names it already.
    assert terms_digest(_bid(100), key=KEY) == terms_digest(_bid(100, request_id="other"),
                                                            key=KEY)


def test_the_digest_is_keyed_so_terms_cannot_be_guessed_back_from_it() -> None:
    """The digest goes into an update id, which Temporal shows to anyone who reads it (attack
    s17 MEDIUM 2): without the key it is neither the plain hash of the terms nor the same
    under another key."""
    body = _bid(100)
    plain = terms_sha256(body)
    assert terms_digest(body, key=KEY) != plain
    assert terms_digest(body, key=KEY) != terms_digest(body, key=bytes(32))


def _objection_body(kind: tc.StatementKind, objection_id: str,
                    answer_due: str = "") -> dict[str, object]:
    return tc.tender_statement_body(
        kind=kind, tender_no="TD-20261201-000001", official_id="OF-0001",
        department_code="trading", roles=["trading_officer"], system="trading-platform",
        issued_at=AT, request_id=REQUEST, objection_id=objection_id, answer_due=answer_due)


def test_an_objection_number_is_given_anew_but_an_answer_names_its_objection() -> None:
    """Trading numbers an objection (and sets its answer's due date) on each call, so those
    are not what an objection asks; an answer's objection is (attack s17 LOW 3)."""
    objected = [_objection_body(tc.StatementKind.OBJECTION, n, due)
                for n, due in (("OB-1", "2026-12-04T08:00:00Z"), ("OB-2", "2026-12-05T08:00:00Z"))]
    assert differing_terms(*objected) == []
    answers = [_objection_body(tc.StatementKind.OBJECTION_ANSWER, n) for n in ("OB-1", "OB-2")]
    assert differing_terms(*answers) == ["objection_id"]
    assert terms_digest(answers[0], key=KEY) != terms_digest(answers[1], key=KEY)
