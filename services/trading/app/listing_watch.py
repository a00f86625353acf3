"""Monitoring of the bidders' acts on listings (issue #9 item 7): where each came from.

A listing bid, buyer's registration or auction bid reaches trading twice: the
servicer signs it and sends it to the listing's workflow, and the workflow has
trading record it (services/trading/app/listing_steps.py). Only the servicer
sees the caller's network address, and the workflow must not carry it
(Temporal payloads hold no caller data), so the servicer notes the act's
network origin here, under the key the act will be recorded with and the digest of
the terms it asks (each content under one request id has its own note), before it
sends the act; when the act is recorded, its monitoring step carries the
``same_origin`` alert if another bidder acted on the listing from the same
origin (services/trading/db/repository.py ``Listings.add_step``). An act the
workflow refuses is never recorded, so its note raises nothing.

The notes stay bounded by the acts trading takes: only an act that passed the
servicer's own checks (``prepare_bidder_act``) is noted, and the note of an act the
workflow then refuses (its validator, or the recording step) is deleted at once
(``forget_act_origin``), so refused acts cannot fill the table. A note stays while
the workflow could not be reached (the caller gets UNAVAILABLE): the same act sent again
may still be recorded, and is, under the noted key.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError

from kernel.activities import is_unique_violation
from services.trading.app.request_ids import terms_sha256
from services.trading.db.repository import TradingUnitOfWork
from services.trading.domain.model import act_key
from workflows.approval_contract import SignedStatement
from workflows.listing_contract import ListingFacts, StatementKind

#: The step a bidder's act is recorded as (services/trading/app/listing_steps.py).
ACT_STEPS = {StatementKind.BID: "listing_bid", StatementKind.BUYER: "buyer_registered",
             StatementKind.AUCTION_BID: "auction_bid"}


def recorded_act_key(kind: StatementKind, statement: SignedStatement) -> str:
    """The key the act in ``statement`` (signed by trading) will be recorded under."""
    facts = ListingFacts.read(statement.body)
    return act_key(ACT_STEPS[kind], facts.system, facts.request_id or facts.issued_at)


def note_act_origin(*, uow: TradingUnitOfWork, kind: StatementKind, listing_no: str,
                    statement: SignedStatement, origin: str, now: datetime) -> None:
    """Note the network origin (``monitoring.network_origin``; '' when unknown: nothing is
    noted) of a bidder's act about to be sent to the listing's workflow."""
    if not origin or kind not in ACT_STEPS:
        return
    try:
        with uow:
            uow.listings.note_origin(listing_no, recorded_act_key(kind, statement),
                                     terms_sha256(statement.body), origin, at=now)
            uow.commit()
    except IntegrityError as clash:
        if not is_unique_violation(clash):
            raise
        # A retry of the same act noted it at the same moment: the first note stays.


def forget_act_origin(*, uow: TradingUnitOfWork, kind: StatementKind, listing_no: str,
                      statement: SignedStatement) -> None:
    """Delete the note of an act the listing's workflow refused (never recorded); the note
    of the same act recorded (an earlier attempt's) stays, and so does the note of another
    content under its request id (each content is noted under its terms' digest: a refused
    twin never deletes the note of the act in flight)."""
    if kind not in ACT_STEPS:
        return
    with uow:
        uow.listings.forget_origin(listing_no, recorded_act_key(kind, statement),
                                   terms_sha256(statement.body))
        uow.commit()
