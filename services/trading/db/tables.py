"""The trading database: catalogue, agencies, expert pool, directory copies, audit log."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)

from kernel.audit import audit_table
from kernel.checkpoints import audit_checkpoints_table
from kernel.db import sequences_table
from kernel.directory import departments_table, officials_table
from kernel.instants import UtcDateTime
from kernel.systems import calling_systems_table

metadata = MetaData()

catalogue_entries = Table(
    "catalogue_entries",
    metadata,
    Column("code", String(10), primary_key=True),
    Column("category", String(30), nullable=False),
    Column("name", String(100), nullable=False),
    Column("threshold_fen", BigInteger, nullable=False),
    Column("basis", Text, nullable=False),
    Index("ix_catalogue_entries_category", "category", "code"),
)

agencies = Table(
    "agencies",
    metadata,
    Column("code", String(10), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("qualification", String(200), nullable=False),
)

experts = Table(
    "experts",
    metadata,
    Column("id", String(10), primary_key=True),
    Column("name", String(50), nullable=False),
    Column("employer", String(100), nullable=False),
    Column("available", Boolean, nullable=False),
    Column("unavailable_reason", String(200), nullable=False),
    Column("registered_at", UtcDateTime, nullable=False),
)

# One row per specialty so that "experts of a specialty" is an indexed query;
# position keeps the order the expert registered them in.
expert_specialties = Table(
    "expert_specialties",
    metadata,
    Column("expert_id", String(10), ForeignKey("experts.id"), nullable=False),
    Column("specialty", String(50), nullable=False),
    Column("position", Integer, nullable=False),
    PrimaryKeyConstraint("expert_id", "specialty"),
    Index("ix_expert_specialties_specialty", "specialty", "expert_id"),
)

#: The public feed: append-only, numbered 1, 2, 3, ... in the order the entries commit.
feed_entries = Table(
    "feed_entries",
    metadata,
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(40), nullable=False),
    Column("subject", String(80), nullable=False),
    Column("published_at", UtcDateTime, nullable=False),
    #: The body as published: RFC 8785 canonical JSON text.
    Column("body", Text, nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Index("ix_feed_entries_subject", "subject", "sequence"),
)

#: Verifiable draws; candidates and witnesses as JSON lists in the published order.
draws = Table(
    "draws",
    metadata,
    Column("draw_id", String(20), primary_key=True),
    Column("purpose", String(20), nullable=False),
    Column("title", String(200), nullable=False),
    Column("candidates", Text, nullable=False),
    Column("witnesses", Text, nullable=False),
    Column("draw_count", Integer, nullable=False),
    Column("reveal_deadline", UtcDateTime, nullable=False),
    Column("opened_by", String(20), nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("state", String(10), nullable=False),
    Column("opened_sequence", BigInteger, nullable=False),
    Column("result_sequence", BigInteger, nullable=True),
    #: The outcome (kernel of the result entry) once closed, as JSON.
    Column("outcome", Text, nullable=True),
    #: When every witness must have committed (draws opened since 0005).
    Column("commit_deadline", UtcDateTime, nullable=True),
    #: What the draw is for (draws opened since 0008; NULL before).
    Column("subject", String(80), nullable=True),
    #: The failed draw of the same subject this one replaces; '' for a first draw.
    Column("replaces_draw_id", String(20), nullable=True),
    #: Where the candidates came from (specialties, conflicted employers,
    #: exclusions), as JSON.
    Column("candidate_basis", Text, nullable=True),
    Index("ix_draws_state_deadline", "state", "reveal_deadline"),
    Index("ix_draws_subject", "subject", "opened_at"),
    #: One draw a subject that has not failed: a second one, also opened at once
    #: by a concurrent call, is refused by the database.
    Index("uq_draws_live_subject", "subject", unique=True,
          sqlite_where=text("state != 'failed'"), postgresql_where=text("state != 'failed'")),
)

#: The seeds revealed so far; kept by the service until the result publishes them.
draw_seeds = Table(
    "draw_seeds",
    metadata,
    Column("draw_id", String(20), ForeignKey("draws.draw_id"), nullable=False),
    Column("official_id", String(20), nullable=False),
    Column("seed", String(128), nullable=False),
    Column("revealed_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("draw_id", "official_id"),
)

#: Every commitment given for any draw: a commitment (so a seed) serves one draw only.
draw_commitments = Table(
    "draw_commitments",
    metadata,
    Column("commitment", String(64), primary_key=True),
    Column("draw_id", String(20), ForeignKey("draws.draw_id"), nullable=False),
    Column("official_id", String(20), nullable=False),
)

#: The bidders directory: each bidder and the one calling system that acts for it.
bidders = Table(
    "bidders",
    metadata,
    Column("bidder_id", String(10), primary_key=True),
    #: The company's registered name (a legal person, not personal data).
    Column("name", String(200), nullable=False),
    Column("system", String(100), nullable=False),
)

#: Projects registered for trading, with the catalogue's word on them when registered.
projects = Table(
    "projects",
    metadata,
    Column("project_no", String(20), primary_key=True),
    Column("request_id", String(36), nullable=False, unique=True),
    Column("category", String(30), nullable=False),
    Column("title", String(200), nullable=False),
    Column("estimated_value_fen", BigInteger, nullable=False),
    Column("funding_source", String(20), nullable=False),
    Column("department_code", String(10), nullable=False),
    #: The catalogue entry that makes it enter the venue; '' when none.
    Column("entry_code", String(10), nullable=False),
    Column("registered_by", String(20), nullable=False),
    Column("registered_at", UtcDateTime, nullable=False),
    #: The calling system that registered it (its request id answers that system only);
    #: '' for a project registered before this column whose audit entry was not found.
    Column("system", String(100), nullable=False, server_default=""),
)

#: Projects awarded outside the venue (only those the catalogue lets out).
direct_awards = Table(
    "direct_awards",
    metadata,
    Column("project_no", String(20), ForeignKey("projects.project_no"), primary_key=True),
    Column("request_id", String(36), nullable=False, unique=True),
    Column("supplier_code", String(18), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("recorded_by", String(20), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    #: The calling system that recorded it (its request id answers that system only);
    #: '' for an award recorded before this column whose audit entry was not found.
    Column("system", String(100), nullable=False, server_default=""),
)

#: Tenders; ``workflow_started`` false is the outbox entry of the tender's workflow.
tenders = Table(
    "tenders",
    metadata,
    Column("tender_no", String(20), primary_key=True),
    Column("request_id", String(36), nullable=False, unique=True),
    Column("project_no", String(20), ForeignKey("projects.project_no"), nullable=False,
           unique=True),
    Column("category", String(30), nullable=False),
    Column("stage", String(20), nullable=False),
    Column("announced_at", UtcDateTime, nullable=False),
    Column("bid_deadline", UtcDateTime, nullable=False),
    Column("documents_until", UtcDateTime, nullable=True),
    Column("objections_until", UtcDateTime, nullable=True),
    Column("decryption_window_seconds", Integer, nullable=False),
    #: The signed announcement the workflow is started with (JSON).
    Column("announcement", Text, nullable=False),
    Column("workflow_started", Boolean, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("winner", String(10), nullable=False),
    Index("ix_tenders_unstarted", "workflow_started", "tender_no"),
)

#: Each step of a tender, recorded once (a retried activity finds its step).
tender_steps = Table(
    "tender_steps",
    metadata,
    Column("tender_no", String(20), ForeignKey("tenders.tender_no"), nullable=False),
    Column("step_key", String(80), nullable=False),
    Column("step", String(30), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("feed_sequence", BigInteger, nullable=False),
    #: The signed statement behind the step (JSON).
    Column("statement", Text, nullable=False),
    #: The free text the statement binds (amendment, grounds, answer); '' when none.
    Column("content", Text, nullable=False),
    PrimaryKeyConstraint("tender_no", "step_key"),
)

#: Sealed bids: commitments only (the envelope is in ``sealed_bid_envelopes``); the key
#: stays with the bidder until the decryption window.
sealed_bids = Table(
    "sealed_bids",
    metadata,
    Column("tender_no", String(20), ForeignKey("tenders.tender_no"), nullable=False),
    Column("bidder_id", String(10), ForeignKey("bidders.bidder_id"), nullable=False),
    Column("ciphertext_sha256", String(64), nullable=False),
    Column("key_commitment", String(64), nullable=False),
    Column("system", String(100), nullable=False),
    Column("submitted_at", UtcDateTime, nullable=False),
    #: The key the bidder revealed in the decryption window (hex), once it matched the
    #: key commitment; NULL before.
    Column("revealed_key", String(64), nullable=True),
    Column("revealed_at", UtcDateTime, nullable=True),
    #: After the decryption window: "valid", or why not ("unrevealed", the library's
    #: reason code); '' before.
    Column("validity", String(30), nullable=False),
    #: The network origin (IP address) the bid came from, for monitoring; '' when unknown.
    Column("origin", String(64), nullable=True),
    #: After the decryption window, for a valid bid: the price its document states (fen,
    #: as the evaluation reads it), 0 when it states none; so the ranking does not open
    #: the bid again. NULL before the opening, for an invalid bid, and for a bid opened
    #: before this column (the ranking opens those again). The price is the opened
    #: document's, which the venue holds from the opening on and the ranking publishes.
    Column("price_fen", BigInteger, nullable=True),
    PrimaryKeyConstraint("tender_no", "bidder_id"),
)

#: Each sealed bid's envelope (the bytes the bidder sent), written with its bid, in a table
#: of its own: the bid's row stays small, so the opening's updates of ``sealed_bids`` do not
#: rewrite the envelope and the reads of its other columns do not walk it.
sealed_bid_envelopes = Table(
    "sealed_bid_envelopes",
    metadata,
    Column("tender_no", String(20), nullable=False),
    Column("bidder_id", String(10), nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    PrimaryKeyConstraint("tender_no", "bidder_id"),
    ForeignKeyConstraint(["tender_no", "bidder_id"],
                         ["sealed_bids.tender_no", "sealed_bids.bidder_id"],
                         name="fk_sealed_bid_envelopes_bid"),
)

#: Monitoring: every recorded step of every trade, numbered 1, 2, 3, ... in the order the
#: steps commit (under the feed's lock), for the supervision desk's live watch.
trade_steps = Table(
    "trade_steps",
    metadata,
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    #: The trade: "tender/<no>", "draw/<id>".
    Column("trade", String(80), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("step", String(40), nullable=False),
    #: The trade's stage after the step.
    Column("stage", String(20), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    #: The feed entry the step published; 0 when none.
    Column("feed_sequence", BigInteger, nullable=False),
    #: Public facts of the step (JSON); never a bid's content.
    Column("details", Text, nullable=False),
    Index("ix_trade_steps_trade", "trade", "sequence"),
)

#: The alerts the monitoring rules raised on the steps, numbered in the order they commit.
trade_alerts = Table(
    "trade_alerts",
    metadata,
    Column("alert_no", BigInteger, primary_key=True, autoincrement=False),
    Column("step_sequence", BigInteger, ForeignKey("trade_steps.sequence"), nullable=False),
    Column("trade", String(80), nullable=False),
    Column("rule", String(30), nullable=False),
    Column("message", Text, nullable=False),
    Column("details", Text, nullable=False),
    Column("raised_at", UtcDateTime, nullable=False),
    Index("ix_trade_alerts_step", "step_sequence", "alert_no"),
    Index("ix_trade_alerts_trade", "trade", "alert_no"),
    Index("ix_trade_alerts_rule", "rule", "alert_no"),
)

#: Each expert's own calling system: the only one that may submit its score sheets.
expert_systems = Table(
    "expert_systems",
    metadata,
    Column("expert_id", String(10), ForeignKey("experts.id"), primary_key=True),
    Column("system", String(100), nullable=False, unique=True),
)

#: A tender's evaluation committee: planned when its expert draw is opened, seated
#: (``members``) from the draw's signed result.
tender_committees = Table(
    "tender_committees",
    metadata,
    Column("tender_no", String(20), ForeignKey("tenders.tender_no"), primary_key=True),
    Column("draw_id", String(20), nullable=False),
    Column("size", Integer, nullable=False),
    #: The tenderer's representatives (official ids, JSON list).
    Column("representatives", Text, nullable=False),
    #: The members in seat order (experts as drawn, then representatives; JSON list);
    #: NULL until seated.
    Column("members", Text, nullable=True),
    Column("seated_at", UtcDateTime, nullable=True),
)

#: One score sheet per member per valid bid, never replaced.
tender_score_sheets = Table(
    "tender_score_sheets",
    metadata,
    Column("tender_no", String(20), ForeignKey("tenders.tender_no"), nullable=False),
    Column("member_id", String(20), nullable=False),
    Column("bidder_id", String(10), nullable=False),
    Column("compliant", Boolean, nullable=False),
    Column("technical", Integer, nullable=False),
    Column("business", Integer, nullable=False),
    Column("system", String(100), nullable=False),
    Column("submitted_at", UtcDateTime, nullable=False),
    #: The signed statement it was recorded from (JSON).
    Column("statement", Text, nullable=False),
    PrimaryKeyConstraint("tender_no", "member_id", "bidder_id"),
)

#: Each scored bid's sheets summed (``evaluation.Tally``), kept in the transaction that
#: records each sheet (``Evaluations.add_sheet``), so that the ranking reads a row per bid
#: rather than a row per sheet. Every sheet counts, whoever signed it (see
#: ``tender_member_tallies``).
tender_bid_tallies = Table(
    "tender_bid_tallies",
    metadata,
    Column("tender_no", String(20), ForeignKey("tenders.tender_no"), nullable=False),
    Column("bidder_id", String(10), nullable=False),
    Column("sheets", Integer, nullable=False),
    Column("compliant", Integer, nullable=False),
    Column("technical", Integer, nullable=False),
    Column("business", Integer, nullable=False),
    PrimaryKeyConstraint("tender_no", "bidder_id"),
)

#: How many sheets each member of a tender has recorded, kept with ``tender_bid_tallies``:
#: the sheets of the tender (their sum) and those by anyone off its committee.
tender_member_tallies = Table(
    "tender_member_tallies",
    metadata,
    Column("tender_no", String(20), ForeignKey("tenders.tender_no"), nullable=False),
    Column("member_id", String(20), nullable=False),
    Column("sheets", Integer, nullable=False),
    PrimaryKeyConstraint("tender_no", "member_id"),
)

sequences = sequences_table(metadata)
departments = departments_table(metadata)
officials = officials_table(metadata)
audit_log = audit_table(metadata)
audit_checkpoints = audit_checkpoints_table(metadata)
calling_systems = calling_systems_table(metadata)

#: Land and property-rights listings (issue #9 item 6); the signed announcement is the
#: outbox entry of the listing's workflow until ``workflow_started``.
listings = Table(
    "listings",
    metadata,
    Column("listing_no", String(20), primary_key=True),
    Column("request_id", String(36), nullable=False, unique=True),
    Column("project_no", String(20), ForeignKey("projects.project_no"), nullable=False),
    Column("category", String(30), nullable=False),
    Column("stage", String(20), nullable=False),
    Column("published_at", UtcDateTime, nullable=False),
    Column("opens_at", UtcDateTime, nullable=False),
    #: The close as it stands (a property-rights extension moves it).
    Column("closes_at", UtcDateTime, nullable=False),
    #: The signed announcement the workflow is started with (JSON).
    Column("announcement", Text, nullable=False),
    Column("workflow_started", Boolean, nullable=False),
    Column("buyer_id", String(10), nullable=False),
    Column("deal_price_fen", BigInteger, nullable=False),
    Column("deal_method", String(20), nullable=False),
    Column("failure", String(20), nullable=False),
    Column("concluded_at", UtcDateTime, nullable=True),
    Index("ix_listings_unstarted", "workflow_started", "listing_no"),
    Index("ix_listings_concluded", "concluded_at"),
    #: A project has at most one listing that did not fail: a failed one may be listed again.
    Index("uq_listings_project_not_failed", "project_no", unique=True,
          sqlite_where=text("stage != 'failed'"), postgresql_where=text("stage != 'failed'")),
)

#: The bids, buyers and auction bids of a listing, each recorded once, in order.
listing_acts = Table(
    "listing_acts",
    metadata,
    Column("listing_no", String(20), ForeignKey("listings.listing_no"), nullable=False),
    Column("act_key", String(80), nullable=False),
    Column("position", Integer, nullable=False),
    #: "listing_bid", "buyer_registered" or "auction_bid".
    Column("kind", String(20), nullable=False),
    Column("bidder_id", String(10), ForeignKey("bidders.bidder_id"), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    #: The signed statement behind the act (JSON).
    Column("statement", Text, nullable=False),
    #: The digest of the terms the act asks (``request_ids.terms_sha256``; '' before 0018):
    #: the act's origin note is the one noted under the same digest.
    Column("terms_sha256", String(64), nullable=False, server_default=""),
    PrimaryKeyConstraint("listing_no", "act_key"),
    Index("ix_listing_acts_order", "listing_no", "position"),
)

#: The network origin (IP address, ``monitoring.network_origin``) a bidder's act on a listing
#: was sent from, noted by the servicer before the act goes to the workflow, under the act's
#: key; read when the act is recorded, for the ``same_origin`` rule.
listing_act_origins = Table(
    "listing_act_origins",
    metadata,
    Column("listing_no", String(20), ForeignKey("listings.listing_no"), nullable=False),
    Column("act_key", String(80), nullable=False),
    #: The digest of the terms of the act noted (``request_ids.terms_sha256``; '' before
    #: 0018): each content sent under one request id has its own note, so a refused one's
    #: note goes without the note of the one recorded.
    Column("terms_sha256", String(64), nullable=False, server_default=""),
    Column("origin", String(45), nullable=False),
    Column("noted_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("listing_no", "act_key", "terms_sha256"),
)

#: Each step of a listing, recorded once (a retried activity finds its step).
listing_steps = Table(
    "listing_steps",
    metadata,
    Column("listing_no", String(20), ForeignKey("listings.listing_no"), nullable=False),
    Column("step_key", String(80), nullable=False),
    Column("step", String(30), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("feed_sequence", BigInteger, nullable=False),
    #: The signed statement behind the step (JSON).
    Column("statement", Text, nullable=False),
    PrimaryKeyConstraint("listing_no", "step_key"),
)
