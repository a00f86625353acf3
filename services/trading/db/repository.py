"""The trading service's repositories and unit of work."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Select,
    and_,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from kernel.audit import AuditLog
from kernel.db import RunningNumbers, UnitOfWork
from kernel.directory import Departments, StaffDirectory
from services.trading.db import tables
from services.trading.domain.draws import DrawPurpose, DrawSpec, DrawState, Exclusion, Witness
from services.trading.domain.evaluation import Tally
from services.trading.domain.feed import GENESIS, FeedEntry, FeedLink, NewFeedEntry
from services.trading.domain.listings import ListingAct, ListingRecord
from services.trading.domain.model import Agency, CatalogueEntry, Expert
from services.trading.domain.monitoring import (
    ActSeen,
    Alert,
    AlertRule,
    BidSeen,
    NewTradeStep,
    StoredAlert,
    TradeStep,
    alerts_on_listing_act,
    details_text,
    out_of_order,
)
from services.trading.domain.statistics import Deal, DealSource
from services.trading.domain.tenders import (
    Bidder,
    Committee,
    Envelope,
    Project,
    SealedBid,
    Tender,
    TenderStage,
)


class Catalogue:
    """Repository of the catalogue of what must enter the venue."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.catalogue_entries

    def list(self, *, category: str = "") -> list[CatalogueEntry]:
        query = select(self._t)
        if category:
            query = query.where(self._t.c.category == category)
        rows = self._connection.execute(query.order_by(self._t.c.code))
        return [CatalogueEntry(r.code, r.category, r.name, r.threshold_fen, r.basis)
                for r in rows]

    def count(self) -> int:
        return int(self._connection.execute(select(func.count()).select_from(self._t)).scalar_one())

    def add(self, entry: CatalogueEntry) -> None:
        self._connection.execute(insert(self._t).values(
            code=entry.code, category=entry.category, name=entry.name,
            threshold_fen=entry.threshold_fen, basis=entry.basis))


class Agencies:
    """Repository of the tender agencies."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.agencies

    def get(self, code: str) -> Agency | None:
        row = self._connection.execute(select(self._t).where(self._t.c.code == code)).first()
        return Agency(row.code, row.name, row.qualification) if row else None

    def codes(self) -> list[str]:
        """Every agency's code, sorted."""
        return list(self._connection.execute(
            select(self._t.c.code).order_by(self._t.c.code)).scalars())

    def list(self, *, after: str, limit: int) -> list[Agency]:
        rows = self._connection.execute(
            select(self._t).where(self._t.c.code > after).order_by(self._t.c.code).limit(limit))
        return [Agency(r.code, r.name, r.qualification) for r in rows]

    def add(self, agency: Agency) -> None:
        self._connection.execute(insert(self._t).values(
            code=agency.code, name=agency.name, qualification=agency.qualification))


class ExpertPool:
    """Repository of the expert pool."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.experts
        self._s = tables.expert_specialties

    def _experts(self, rows: Iterable[Row[Any]]) -> list[Expert]:
        rows = list(rows)
        specialties: dict[str, list[str]] = defaultdict(list)
        if rows:
            for s in self._connection.execute(
                    select(self._s.c.expert_id, self._s.c.specialty)
                    .where(self._s.c.expert_id.in_([r.id for r in rows]))
                    .order_by(self._s.c.expert_id, self._s.c.position)):
                specialties[s.expert_id].append(s.specialty)
        return [Expert(id=r.id, name=r.name, specialties=tuple(specialties[r.id]),
                       employer=r.employer, available=r.available,
                       unavailable_reason=r.unavailable_reason) for r in rows]

    def get(self, expert_id: str) -> Expert | None:
        found = self._experts(self._connection.execute(
            select(self._t).where(self._t.c.id == expert_id)))
        return found[0] if found else None

    def list(self, *, specialty: str = "", after: str = "",
             limit: int | None = None) -> list[Expert]:
        query = select(self._t).where(self._t.c.id > after)
        if specialty:
            query = query.where(self._t.c.id.in_(
                select(self._s.c.expert_id).where(self._s.c.specialty == specialty)))
        query = query.order_by(self._t.c.id)
        if limit is not None:
            query = query.limit(limit)
        return self._experts(self._connection.execute(query))

    def add(self, expert: Expert) -> None:
        self._connection.execute(insert(self._t).values(
            id=expert.id, name=expert.name, employer=expert.employer,
            available=expert.available, unavailable_reason=expert.unavailable_reason,
            registered_at=datetime.now(UTC)))
        self._connection.execute(insert(self._s), [
            {"expert_id": expert.id, "specialty": s, "position": i}
            for i, s in enumerate(expert.specialties)])

    def save_availability(self, expert: Expert) -> None:
        self._connection.execute(
            update(self._t).where(self._t.c.id == expert.id)
            .values(available=expert.available, unavailable_reason=expert.unavailable_reason))


class Feed:
    """Repository of the public feed: entries numbered in the order they commit."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.feed_entries

    def append(self, make: Callable[[FeedLink], NewFeedEntry], *, at: datetime) -> int:
        """Publish the entry ``make`` builds for its link as the next number; its sequence.

        ``make`` gets the entry's sequence and the previous entry's SHA-256
        (the chain) and returns the entry, whose signed body carries them.

        The number is taken under a lock held until the transaction ends
        (PostgreSQL: an advisory lock; SQLite: the write lock every writing
        unit of work takes at its start), so an entry with a higher number
        never becomes visible before one with a lower number: a reader
        continuing after the last number it read misses nothing.
        """
        if self._connection.dialect.name == "postgresql":
            self._connection.execute(text(_FEED_LOCK))
        last = self._connection.execute(
            select(self._t.c.sequence, self._t.c.body_sha256)
            .order_by(self._t.c.sequence.desc()).limit(1)).first()
        sequence = int(last.sequence) + 1 if last else 1
        entry = make(FeedLink(sequence, last.body_sha256 if last else GENESIS, at))
        self._connection.execute(insert(self._t).values(
            sequence=sequence, kind=entry.kind, subject=entry.subject, published_at=at,
            body=entry.body, body_sha256=entry.body_sha256))
        return sequence

    @staticmethod
    def _entry(row: Row[Any]) -> FeedEntry:
        return FeedEntry(row.sequence, row.kind, row.subject, row.published_at, row.body,
                         row.body_sha256)

    def after(self, cursor: int, *, limit: int) -> list[FeedEntry]:
        rows = self._connection.execute(select(self._t).where(self._t.c.sequence > cursor)
                                        .order_by(self._t.c.sequence).limit(limit))
        return [self._entry(r) for r in rows]

    def get(self, sequence: int) -> FeedEntry | None:
        row = self._connection.execute(
            select(self._t).where(self._t.c.sequence == sequence)).first()
        return self._entry(row) if row else None


#: The lock every numbered record of the venue takes (feed entries, trade steps, alerts), so
#: that one transaction may append to both without two locks to order.
_FEED_LOCK = "SELECT pg_advisory_xact_lock(hashtext('govhall_trading_feed'))"
#: A positional parameter's mark in a driver's own SQL, by the driver's paramstyle (PEP 249):
#: sqlite3 writes "?", psycopg "%s".
_PARAMETER_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
#: ``Tenders.set_validities``'s statement (tables.sealed_bids), marks in qmark style.
_SET_VALIDITY = ("UPDATE sealed_bids SET validity = ?, price_fen = ? "
                 "WHERE tender_no = ? AND bidder_id = ?")


def _driver_rows(connection: Connection, sql: str,
                 parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` (marks in qmark style) as the driver's own tuples, in the unit's
    transaction: for reads of a row per bid (1,000 at an opening), which need none of
    SQLAlchemy's per-row processing (plain strings and integers, blobs as bytes)."""
    if not connection.in_transaction():
        connection.begin()
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql.replace("?", _PARAMETER_MARKS[connection.dialect.paramstyle]),
                       tuple(parameters))
        return list(cursor.fetchall())
    finally:
        cursor.close()


#: ``Tenders.commitments``' query (tables.sealed_bids).
_COMMITMENTS = ("SELECT bidder_id, ciphertext_sha256, key_commitment FROM sealed_bids "
                "WHERE tender_no = ? ORDER BY bidder_id")
#: ``Tenders.envelopes``' query (tables.sealed_bids, tables.sealed_bid_envelopes).
_ENVELOPES = ("SELECT b.bidder_id, e.ciphertext, b.ciphertext_sha256, b.key_commitment, "
              "b.revealed_key FROM sealed_bids b JOIN sealed_bid_envelopes e "
              "ON e.tender_no = b.tender_no AND e.bidder_id = b.bidder_id "
              "WHERE b.tender_no = ? ORDER BY b.bidder_id")
#: ``Tenders.valid_prices``' query.
_VALID_PRICES = ("SELECT bidder_id, price_fen FROM sealed_bids "
                 "WHERE tender_no = ? AND validity = 'valid' ORDER BY bidder_id")
#: ``Evaluations.committee_tallies``' queries (tables.tender_bid_tallies and
#: tables.tender_member_tallies).
_BID_TALLIES = ("SELECT bidder_id, sheets, compliant, technical, business "
                "FROM tender_bid_tallies WHERE tender_no = ?")
_MEMBER_TALLIES = "SELECT member_id, sheets FROM tender_member_tallies WHERE tender_no = ?"
#: ``Evaluations.add_sheet``'s tallies, kept in its transaction: one upsert each (SQLite and
#: PostgreSQL write ``ON CONFLICT ... DO UPDATE`` alike).
_ADD_TO_BID_TALLY = (
    "INSERT INTO tender_bid_tallies (tender_no, bidder_id, sheets, compliant, technical, "
    "business) VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT (tender_no, bidder_id) DO UPDATE SET "
    "sheets = tender_bid_tallies.sheets + 1, "
    "compliant = tender_bid_tallies.compliant + excluded.compliant, "
    "technical = tender_bid_tallies.technical + excluded.technical, "
    "business = tender_bid_tallies.business + excluded.business")
_ADD_TO_MEMBER_TALLY = (
    "INSERT INTO tender_member_tallies (tender_no, member_id, sheets) VALUES (?, ?, 1) "
    "ON CONFLICT (tender_no, member_id) DO UPDATE SET "
    "sheets = tender_member_tallies.sheets + 1")


class Monitor:
    """Repository of the trade steps and alerts the live watch reads, numbered in the order
    they commit (under the feed's lock, as the feed)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.trade_steps
        self._a = tables.trade_alerts

    def record(self, step: NewTradeStep, alerts: Sequence[Alert] = ()) -> int:
        """Record ``step`` as the next number with ``alerts`` and the order rule's alert,
        if it raises one; the step's sequence.

        As ``Feed.append``: the number is taken under a lock held until the
        transaction ends, so a higher number never becomes visible before a lower one.
        """
        if self._connection.dialect.name == "postgresql":
            self._connection.execute(text(_FEED_LOCK))
        last = self._connection.execute(select(func.max(self._t.c.sequence))).scalar()
        sequence = int(last or 0) + 1
        previous = self._connection.execute(
            select(self._t.c.stage).where(self._t.c.trade == step.trade)
            .order_by(self._t.c.sequence.desc()).limit(1)).scalar()
        ordered = out_of_order(step, previous)
        raised = [*([ordered] if ordered else []), *alerts]
        self._connection.execute(insert(self._t).values(
            sequence=sequence, trade=step.trade, kind=step.kind, step=step.step,
            stage=step.stage, at=step.at, feed_sequence=step.feed_sequence,
            details=details_text(step.details)))
        if raised:
            last_alert = self._connection.execute(select(func.max(self._a.c.alert_no))).scalar()
            first = int(last_alert or 0) + 1
            self._connection.execute(insert(self._a), [
                {"alert_no": first + i, "step_sequence": sequence, "trade": step.trade,
                 "rule": str(alert.rule), "message": alert.message,
                 "details": details_text(alert.details), "raised_at": step.at}
                for i, alert in enumerate(raised)])
        return sequence

    def last_sequence(self) -> int:
        return int(self._connection.execute(select(func.max(self._t.c.sequence))).scalar() or 0)

    def last_alert_no(self) -> int:
        return int(self._connection.execute(select(func.max(self._a.c.alert_no))).scalar() or 0)

    @staticmethod
    def _alert(row: Row[Any]) -> StoredAlert:
        return StoredAlert(row.alert_no, row.step_sequence, row.trade, AlertRule(row.rule),
                           row.message, json.loads(row.details), row.raised_at)

    def after(self, cursor: int, *, limit: int) -> list[TradeStep]:
        """The steps after ``cursor`` in order, each with its alerts."""
        rows = list(self._connection.execute(
            select(self._t).where(self._t.c.sequence > cursor)
            .order_by(self._t.c.sequence).limit(limit)))
        alerts: dict[int, list[StoredAlert]] = defaultdict(list)
        if rows:
            for a in self._connection.execute(
                    select(self._a).where(and_(self._a.c.step_sequence > cursor,
                                               self._a.c.step_sequence <= rows[-1].sequence))
                    .order_by(self._a.c.alert_no)):
                alerts[a.step_sequence].append(self._alert(a))
        return [TradeStep(r.sequence, r.trade, r.kind, r.step, r.stage, r.at, r.feed_sequence,
                          json.loads(r.details), tuple(alerts[r.sequence])) for r in rows]

    def alerts(self, cursor: int, *, limit: int, trade: str = "",
               rule: AlertRule | None = None) -> list[StoredAlert]:
        query = select(self._a).where(self._a.c.alert_no > cursor)
        if trade:
            query = query.where(self._a.c.trade == trade)
        if rule is not None:
            query = query.where(self._a.c.rule == str(rule))
        return [self._alert(r) for r in self._connection.execute(
            query.order_by(self._a.c.alert_no).limit(limit))]


class StoredDraw:
    """A draw as the database holds it."""

    def __init__(self, spec: DrawSpec, *, state: DrawState, opened_by: str,
                 opened_sequence: int, result_sequence: int | None,
                 outcome: dict[str, Any] | None, revealed: frozenset[str]) -> None:
        self.spec = spec
        self.state = state
        self.opened_by = opened_by
        self.opened_sequence = opened_sequence
        self.result_sequence = result_sequence
        self.outcome = outcome
        self.revealed = revealed


class Draws:
    """Repository of the verifiable draws and their revealed seeds."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.draws
        self._s = tables.draw_seeds
        self._c = tables.draw_commitments

    def add(self, spec: DrawSpec, *, opened_by: str, opened_at: datetime,
            opened_sequence: int) -> None:
        self._connection.execute(insert(self._t).values(
            draw_id=spec.draw_id, purpose=str(spec.purpose), title=spec.title,
            candidates=json.dumps(list(spec.candidates), ensure_ascii=False),
            witnesses=self._witnesses(spec),
            draw_count=spec.count, reveal_deadline=spec.reveal_deadline,
            commit_deadline=spec.commit_deadline, subject=spec.subject,
            replaces_draw_id=spec.replaces_draw_id,
            candidate_basis=json.dumps({
                "specialties": list(spec.specialties),
                "conflicted_employers": list(spec.conflicted_employers),
                "exclusions": [[e.expert_id, e.basis] for e in spec.exclusions]},
                ensure_ascii=False),
            opened_by=opened_by, opened_at=opened_at, state=str(DrawState.COMMITTING),
            opened_sequence=opened_sequence, result_sequence=None, outcome=None))

    def save_commitments(self, spec: DrawSpec) -> None:
        """Record the witnesses' commitments as ``spec`` holds them."""
        self._connection.execute(
            update(self._t).where(self._t.c.draw_id == spec.draw_id)
            .values(witnesses=self._witnesses(spec)))

    @staticmethod
    def _witnesses(spec: DrawSpec) -> str:
        """The witnesses as stored: [id, commitment, independent] in witness order."""
        return json.dumps([[w.official_id, w.commitment, w.independent]
                           for w in spec.witnesses])

    def commitment_used_in(self, commitment: str) -> str | None:
        """The draw a commitment was given for, if any."""
        return self._connection.execute(
            select(self._c.c.draw_id).where(self._c.c.commitment == commitment)).scalar()

    def add_commitment(self, commitment: str, *, draw_id: str, official_id: str) -> None:
        """Record a commitment as used (its primary key refuses it for any other draw)."""
        self._connection.execute(insert(self._c).values(
            commitment=commitment, draw_id=draw_id, official_id=official_id))

    def publish(self, draw_id: str, *, opened_sequence: int) -> None:
        """The draw's opening is published: seeds may be revealed."""
        self._connection.execute(
            update(self._t).where(self._t.c.draw_id == draw_id)
            .values(state=str(DrawState.OPEN), opened_sequence=opened_sequence))

    def get(self, draw_id: str, *, for_update: bool = False) -> StoredDraw | None:
        """The draw; ``for_update`` locks its row to the end of the transaction (PostgreSQL),
        so that concurrent reveals close it once."""
        query = select(self._t).where(self._t.c.draw_id == draw_id)
        if for_update:
            query = query.with_for_update()
        row = self._connection.execute(query).first()
        if row is None:
            return None
        basis = json.loads(row.candidate_basis) if row.candidate_basis else {}
        spec = DrawSpec(
            draw_id=row.draw_id, purpose=DrawPurpose(row.purpose), title=row.title,
            candidates=tuple(json.loads(row.candidates)),
            # Draws opened before independence was recorded hold [id, commitment].
            witnesses=tuple(Witness(*w) for w in json.loads(row.witnesses)),
            count=row.draw_count, reveal_deadline=row.reveal_deadline,
            commit_deadline=row.commit_deadline, subject=row.subject or "",
            replaces_draw_id=row.replaces_draw_id or "",
            specialties=tuple(basis.get("specialties", ())),
            conflicted_employers=tuple(basis.get("conflicted_employers", ())),
            exclusions=tuple(Exclusion(*e) for e in basis.get("exclusions", ())))
        revealed = frozenset(self._connection.execute(
            select(self._s.c.official_id).where(self._s.c.draw_id == draw_id)).scalars())
        return StoredDraw(spec, state=DrawState(row.state), opened_by=row.opened_by,
                          opened_sequence=row.opened_sequence,
                          result_sequence=row.result_sequence,
                          outcome=json.loads(row.outcome) if row.outcome else None,
                          revealed=revealed)

    def of_subject(self, subject: str) -> list[tuple[str, DrawState]]:
        """The draws of ``subject`` (id and state), in the order they were opened."""
        t = self._t
        return [(r.draw_id, DrawState(r.state)) for r in self._connection.execute(
            select(t.c.draw_id, t.c.state).where(t.c.subject == subject)
            .order_by(t.c.opened_at, t.c.draw_id))]

    def add_seed(self, draw_id: str, official_id: str, seed: bytes, *, at: datetime) -> None:
        self._connection.execute(insert(self._s).values(
            draw_id=draw_id, official_id=official_id, seed=seed.hex(), revealed_at=at))

    def seeds(self, draw_id: str) -> dict[str, bytes]:
        return {r.official_id: bytes.fromhex(r.seed) for r in self._connection.execute(
            select(self._s.c.official_id, self._s.c.seed).where(self._s.c.draw_id == draw_id))}

    def close(self, draw_id: str, *, state: DrawState, result_sequence: int,
              outcome: dict[str, Any]) -> None:
        self._connection.execute(
            update(self._t).where(self._t.c.draw_id == draw_id)
            .values(state=str(state), result_sequence=result_sequence,
                    outcome=json.dumps(outcome, ensure_ascii=False)))

    def overdue(self, now: datetime, *, limit: int = 100) -> list[str]:
        """The ids of the draws whose deadline has come: open ones past their reveal
        deadline, committing ones past their commit deadline."""
        t = self._t
        return list(self._connection.execute(
            select(t.c.draw_id)
            .where(or_(and_(t.c.state == str(DrawState.OPEN), t.c.reveal_deadline <= now),
                       and_(t.c.state == str(DrawState.COMMITTING),
                            t.c.commit_deadline <= now)))
            .order_by(t.c.draw_id).limit(limit)).scalars())


class Bidders:
    """Repository of the bidders directory."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._t = tables.bidders

    def get(self, bidder_id: str) -> Bidder | None:
        row = self._connection.execute(
            select(self._t).where(self._t.c.bidder_id == bidder_id)).first()
        return Bidder(row.bidder_id, row.name, row.system) if row else None

    def count(self) -> int:
        return int(self._connection.execute(select(func.count()).select_from(self._t))
                   .scalar_one())

    def add(self, bidder: Bidder) -> None:
        self._connection.execute(insert(self._t).values(
            bidder_id=bidder.bidder_id, name=bidder.name, system=bidder.system))


class Projects:
    """Repository of the projects registered for trading."""

    def __init__(self, connection: Connection, catalogue: Catalogue) -> None:
        self._connection = connection
        self._catalogue = catalogue
        self._t = tables.projects

    def _project(self, row: Row[Any]) -> Project:
        entries = {e.code: e for e in self._catalogue.list(category=row.category)}
        return Project(row.project_no, row.category, row.title, row.estimated_value_fen,
                       row.funding_source, row.department_code,
                       entries.get(row.entry_code) if row.entry_code else None,
                       row.registered_at)

    def get(self, project_no: str, *, lock: bool = False) -> Project | None:
        """The project; with ``lock``, its row is locked until the unit ends (PostgreSQL's
        ``FOR UPDATE``; SQLite's units hold the one write lock already), so the ways a
        project is traded (a tender, a direct award, a listing) are decided one at a time."""
        query = select(self._t).where(self._t.c.project_no == project_no)
        row = self._connection.execute(query.with_for_update() if lock else query).first()
        return self._project(row) if row else None

    def by_request(self, request_id: str) -> Project | None:
        row = self._connection.execute(
            select(self._t).where(self._t.c.request_id == request_id)).first()
        return self._project(row) if row else None

    def estimate(self, project_no: str) -> int:
        """The project's estimated value in fen (``Project.estimated_value_fen``); 0 for a
        project not known. One column: the catalogue entry ``get`` loads is not needed."""
        value = self._connection.execute(
            select(self._t.c.estimated_value_fen).where(self._t.c.project_no == project_no)
        ).scalar()
        return int(value or 0)

    def registering_system(self, project_no: str) -> str:
        """The calling system that registered the project ('' when not known)."""
        return str(self._connection.execute(
            select(self._t.c.system).where(self._t.c.project_no == project_no)).scalar() or "")

    def add(self, project: Project, *, request_id: str, registered_by: str,
            system: str) -> None:
        self._connection.execute(insert(self._t).values(
            project_no=project.project_no, request_id=request_id, category=project.category,
            title=project.title, estimated_value_fen=project.estimated_value_fen,
            funding_source=project.funding_source, department_code=project.department_code,
            entry_code=project.entry.code if project.entry else "",
            registered_by=registered_by, registered_at=project.registered_at, system=system))

    def add_direct_award(self, project_no: str, *, request_id: str, supplier_code: str,
                         amount_fen: int, recorded_by: str, at: datetime,
                         system: str) -> None:
        self._connection.execute(insert(tables.direct_awards).values(
            project_no=project_no, request_id=request_id, supplier_code=supplier_code,
            amount_fen=amount_fen, recorded_by=recorded_by, recorded_at=at, system=system))

    def direct_award(self, project_no: str) -> Row[Any] | None:
        t = tables.direct_awards
        return self._connection.execute(select(t).where(t.c.project_no == project_no)).first()

    def direct_award_by_request(self, request_id: str) -> Row[Any] | None:
        t = tables.direct_awards
        return self._connection.execute(select(t).where(t.c.request_id == request_id)).first()

    def direct_deals(self, start: datetime, end: datetime) -> list[Deal]:
        """The direct awards recorded in [start, end)."""
        d, p = tables.direct_awards, self._t
        return [Deal(DealSource.DIRECT_AWARD, r.category, r.recorded_at, r.amount_fen)
                for r in self._connection.execute(
                    select(d.c.recorded_at, d.c.amount_fen, p.c.category)
                    .join(p, p.c.project_no == d.c.project_no)
                    .where(and_(d.c.recorded_at >= start, d.c.recorded_at < end)))]


def _amount(statement: str) -> int:
    """The amount a recorded statement signs (an award's, a contract's); 0 when none."""
    return int(json.loads(statement)["body"].get("amount_fen", 0))


class Tenders:
    """Repository of the tenders, their recorded steps and their sealed bids."""

    def __init__(self, connection: Connection, monitor: Monitor) -> None:
        self._connection = connection
        self._monitor = monitor
        self._t = tables.tenders
        self._s = tables.tender_steps
        self._b = tables.sealed_bids
        self._e = tables.sealed_bid_envelopes

    def _tender(self, row: Row[Any]) -> Tender:
        announcement = json.loads(row.announcement)
        bids = int(self._connection.execute(
            select(func.count()).select_from(self._b)
            .where(self._b.c.tender_no == row.tender_no)).scalar_one())
        return Tender(row.tender_no, row.project_no, row.category, TenderStage(row.stage),
                      row.announced_at, row.bid_deadline, row.documents_until,
                      row.objections_until, row.decryption_window_seconds,
                      row.workflow_started, row.paused, row.winner,
                      announcement["body"].get("entry_code", ""), bids)

    def get(self, tender_no: str, *, for_update: bool = False) -> Tender | None:
        query = select(self._t).where(self._t.c.tender_no == tender_no)
        if for_update:
            query = query.with_for_update()
        row = self._connection.execute(query).first()
        return self._tender(row) if row else None

    def by_request(self, request_id: str) -> Tender | None:
        row = self._connection.execute(
            select(self._t).where(self._t.c.request_id == request_id)).first()
        return self._tender(row) if row else None

    def of_project(self, project_no: str) -> str | None:
        return self._connection.execute(
            select(self._t.c.tender_no).where(self._t.c.project_no == project_no)).scalar()

    def announcement(self, tender_no: str) -> dict[str, Any]:
        text_ = self._connection.execute(
            select(self._t.c.announcement).where(self._t.c.tender_no == tender_no)
        ).scalar_one()
        found: dict[str, Any] = json.loads(text_)
        return found

    def add(self, tender: Tender, *, request_id: str, announcement: dict[str, Any]) -> None:
        self._connection.execute(insert(self._t).values(
            tender_no=tender.tender_no, request_id=request_id, project_no=tender.project_no,
            category=tender.category, stage=str(tender.stage),
            announced_at=tender.announced_at, bid_deadline=tender.bid_deadline,
            documents_until=tender.documents_until, objections_until=tender.objections_until,
            decryption_window_seconds=tender.decryption_window_seconds,
            announcement=json.dumps(announcement, ensure_ascii=False),
            workflow_started=False, paused=False, winner=""))

    def unstarted(self, *, limit: int = 100) -> list[str]:
        return list(self._connection.execute(
            select(self._t.c.tender_no).where(self._t.c.workflow_started.is_(False))
            .order_by(self._t.c.tender_no).limit(limit)).scalars())

    def mark_started(self, tender_no: str) -> bool:
        """True if this call marked it (it was pending)."""
        result = self._connection.execute(
            update(self._t).where(and_(self._t.c.tender_no == tender_no,
                                       self._t.c.workflow_started.is_(False)))
            .values(workflow_started=True))
        return bool(result.rowcount)

    def save_state(self, tender_no: str, **values: Any) -> None:
        self._connection.execute(
            update(self._t).where(self._t.c.tender_no == tender_no).values(**values))

    def step(self, tender_no: str, step_key: str) -> Row[Any] | None:
        return self._connection.execute(
            select(self._s).where(and_(self._s.c.tender_no == tender_no,
                                       self._s.c.step_key == step_key))).first()

    def add_step(self, tender_no: str, step_key: str, *, step: str, at: datetime,
                 feed_sequence: int, statement: dict[str, Any], content: str,
                 alerts: Sequence[Alert] = (), details: dict[str, Any] | None = None) -> None:
        """Record the step, and for monitoring the step at the tender's stage as it now
        stands (its state saved first) with ``alerts``; the content is not monitored."""
        self._connection.execute(insert(self._s).values(
            tender_no=tender_no, step_key=step_key, step=step, at=at,
            feed_sequence=feed_sequence, statement=json.dumps(statement, ensure_ascii=False),
            content=content))
        stage = self._connection.execute(
            select(self._t.c.stage).where(self._t.c.tender_no == tender_no)).scalar_one()
        self._monitor.record(NewTradeStep(f"tender/{tender_no}", "tender", step, stage, at,
                                          feed_sequence, details or {}), alerts)

    def steps(self, tender_no: str) -> list[Row[Any]]:
        return list(self._connection.execute(
            select(self._s).where(self._s.c.tender_no == tender_no).order_by(self._s.c.at)))

    def _with_envelope(self) -> Select[Any]:
        """Each bid's row with its envelope (``tables.sealed_bid_envelopes``)."""
        b, e = self._b, self._e
        return select(b, e.c.ciphertext).join(
            e, and_(e.c.tender_no == b.c.tender_no, e.c.bidder_id == b.c.bidder_id))

    def bid(self, tender_no: str, bidder_id: str) -> SealedBid | None:
        row = self._connection.execute(self._with_envelope().where(and_(
            self._b.c.tender_no == tender_no, self._b.c.bidder_id == bidder_id))).first()
        return self._bid(row) if row else None

    @staticmethod
    def _bid(row: Row[Any]) -> SealedBid:
        return SealedBid(row.tender_no, row.bidder_id, bytes(row.ciphertext),
                         row.ciphertext_sha256, row.key_commitment, row.system,
                         row.submitted_at,
                         bytes.fromhex(row.revealed_key) if row.revealed_key else None,
                         row.validity, row.revealed_at, row.origin or "")

    def bids(self, tender_no: str) -> list[SealedBid]:
        return [self._bid(r) for r in self._connection.execute(
            self._with_envelope().where(self._b.c.tender_no == tender_no)
            .order_by(self._b.c.bidder_id))]

    def commitments(self, tender_no: str) -> list[tuple[str, str, str]]:
        """The tender's bids as the opening record publishes them: (bidder id, ciphertext
        SHA-256, key commitment), by bidder id; no ciphertext loaded."""
        return [(bidder, digest, commitment) for bidder, digest, commitment
                in _driver_rows(self._connection, _COMMITMENTS, (tender_no,))]

    def envelopes(self, tender_no: str) -> list[Envelope]:
        """What the opening checks of each bid, by bidder id: one query of five columns, the
        envelope from its own table."""
        return [Envelope(bidder, bytes(ciphertext), digest, commitment,
                         bytes.fromhex(key) if key else None)
                for bidder, ciphertext, digest, commitment, key
                in _driver_rows(self._connection, _ENVELOPES, (tender_no,))]

    def bids_seen(self, tender_no: str) -> list[BidSeen]:
        """The tender's bids as the monitoring rules see them (no ciphertext loaded)."""
        b = self._b
        return [BidSeen(r.bidder_id, r.origin or "", r.ciphertext_sha256)
                for r in self._connection.execute(
                    select(b.c.bidder_id, b.c.origin, b.c.ciphertext_sha256)
                    .where(b.c.tender_no == tender_no).order_by(b.c.bidder_id))]

    def add_bid(self, bid: SealedBid, *, alerts: Sequence[Alert] = ()) -> None:
        """Keep the bid and its envelope (its own table), and for monitoring a step
        "bid_received" (who, which envelope; never the content) with ``alerts``."""
        self._connection.execute(insert(self._b).values(
            tender_no=bid.tender_no, bidder_id=bid.bidder_id,
            ciphertext_sha256=bid.ciphertext_sha256, key_commitment=bid.key_commitment,
            system=bid.system, submitted_at=bid.submitted_at, revealed_key=None,
            revealed_at=None, validity="", origin=bid.origin))
        self._connection.execute(insert(self._e).values(
            tender_no=bid.tender_no, bidder_id=bid.bidder_id, ciphertext=bid.ciphertext))
        stage = self._connection.execute(
            select(self._t.c.stage).where(self._t.c.tender_no == bid.tender_no)).scalar_one()
        self._monitor.record(NewTradeStep(
            f"tender/{bid.tender_no}", "tender", "bid_received", stage, bid.submitted_at,
            0, {"bidder_id": bid.bidder_id, "ciphertext_sha256": bid.ciphertext_sha256}),
            alerts)

    def deals(self, start: datetime, end: datetime) -> list[Deal]:
        """The tenders awarded in [start, end): at the award, worth the contract's amount
        once recorded, the award's before."""
        s, t = self._s, self._t
        awarded = list(self._connection.execute(
            select(s.c.tender_no, s.c.at, s.c.statement, t.c.category)
            .join(t, t.c.tender_no == s.c.tender_no)
            .where(and_(s.c.step == "awarded", s.c.at >= start, s.c.at < end))))
        contracts: dict[str, int] = {}
        if awarded:
            for row in self._connection.execute(
                    select(s.c.tender_no, s.c.statement).where(and_(
                        s.c.step == "contracted",
                        s.c.tender_no.in_([r.tender_no for r in awarded])))):
                contracts[row.tender_no] = _amount(row.statement)
        return [Deal(DealSource.TENDER, r.category, r.at,
                     contracts.get(r.tender_no, _amount(r.statement))) for r in awarded]

    def reveal(self, tender_no: str, bidder_id: str, key: bytes, *, at: datetime) -> None:
        self._connection.execute(update(self._b).where(and_(
            self._b.c.tender_no == tender_no, self._b.c.bidder_id == bidder_id))
            .values(revealed_key=key.hex(), revealed_at=at))

    def set_validity(self, tender_no: str, bidder_id: str, validity: str) -> None:
        self._connection.execute(update(self._b).where(and_(
            self._b.c.tender_no == tender_no, self._b.c.bidder_id == bidder_id))
            .values(validity=validity))

    def set_validities(self, tender_no: str, validities: dict[str, str],
                       prices: Mapping[str, int] | None = None) -> None:
        """Every opened bid's validity (bidder id -> validity), and each valid bid's stated
        price (bidder id -> fen, 0 for none; see ``tables.sealed_bids.price_fen``), in one
        batched statement."""
        if not validities:
            return
        prices = prices or {}
        # The driver's own executemany: the values are plain strings and integers, which
        # need none of SQLAlchemy's per-parameter processing (1,000 rows at an opening).
        self._connection.exec_driver_sql(
            _SET_VALIDITY.replace("?", _PARAMETER_MARKS[self._connection.dialect.paramstyle]),
            [(validity, prices.get(bidder), tender_no, bidder)
             for bidder, validity in validities.items()])

    def valid_prices(self, tender_no: str) -> dict[str, int | None]:
        """The valid bids (bidder id -> the price recorded at the opening: fen, 0 for a
        document that states none, None when opened before prices were recorded), in one
        query of two columns."""
        return dict(_driver_rows(self._connection, _VALID_PRICES, (tender_no,)))


class Evaluations:
    """Repository of the experts' own systems, the tenders' committees and score sheets."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._x = tables.expert_systems
        self._c = tables.tender_committees
        self._s = tables.tender_score_sheets

    def expert_system(self, expert_id: str) -> str | None:
        return self._connection.execute(
            select(self._x.c.system).where(self._x.c.expert_id == expert_id)).scalar()

    def add_expert_system(self, expert_id: str, system: str) -> None:
        self._connection.execute(insert(self._x).values(expert_id=expert_id, system=system))

    def expert_systems(self) -> int:
        return int(self._connection.execute(select(func.count()).select_from(self._x))
                   .scalar_one())

    def committee(self, tender_no: str) -> Committee | None:
        row = self._connection.execute(
            select(self._c).where(self._c.c.tender_no == tender_no)).first()
        if row is None:
            return None
        return Committee(row.tender_no, row.draw_id, row.size,
                         tuple(json.loads(row.representatives)),
                         tuple(json.loads(row.members)) if row.members else (),
                         row.seated_at)

    def plan_committee(self, committee: Committee) -> None:
        """Insert the committee as planned, or replace a plan not yet seated."""
        values = {"draw_id": committee.draw_id, "size": committee.size,
                  "representatives": json.dumps(list(committee.representatives)),
                  "members": None, "seated_at": None}
        if self.committee(committee.tender_no) is None:
            self._connection.execute(insert(self._c).values(tender_no=committee.tender_no,
                                                            **values))
        else:
            self._connection.execute(update(self._c).where(
                self._c.c.tender_no == committee.tender_no).values(**values))

    def seat(self, tender_no: str, members: Iterable[str], *, at: datetime) -> None:
        self._connection.execute(update(self._c).where(self._c.c.tender_no == tender_no)
                                 .values(members=json.dumps(list(members)), seated_at=at))

    def sheet(self, tender_no: str, member_id: str, bidder_id: str) -> Row[Any] | None:
        return self._connection.execute(select(self._s).where(and_(
            self._s.c.tender_no == tender_no, self._s.c.member_id == member_id,
            self._s.c.bidder_id == bidder_id))).first()

    def sheet_count(self, tender_no: str) -> int:
        return int(self._connection.execute(
            select(func.count()).select_from(self._s)
            .where(self._s.c.tender_no == tender_no)).scalar_one())

    def tallies(self, tender_no: str) -> dict[str, Tally]:
        """Each scored bid's sheets summed by the database (bidder id -> Tally): one query,
        a row per bid rather than per sheet."""
        s = self._s
        return {bidder: Tally(int(count), int(compliant or 0), int(technical or 0),
                              int(business or 0))
                for bidder, count, compliant, technical, business in self._connection.execute(
                    select(s.c.bidder_id, func.count(),
                           func.sum(case((s.c.compliant, 1), else_=0)),
                           func.sum(s.c.technical), func.sum(s.c.business))
                    .where(s.c.tender_no == tender_no).group_by(s.c.bidder_id))}

    def committee_tallies(self, tender_no: str,
                          members: Sequence[str]) -> tuple[dict[str, Tally], int]:
        """``tallies`` (every sheet, whoever signed it), and how many sheets are by someone
        not among ``members`` (``sheets_by_others``), from the tallies ``add_sheet`` keeps:
        a row per bid and a row per member, not a row per sheet."""
        tallies = {bidder: Tally(sheets, compliant, technical, business)
                   for bidder, sheets, compliant, technical, business
                   in _driver_rows(self._connection, _BID_TALLIES, (tender_no,))}
        seated = set(members)
        others = sum(sheets for member, sheets
                     in _driver_rows(self._connection, _MEMBER_TALLIES, (tender_no,))
                     if member not in seated)
        return tallies, others

    def recorded_sheets(self, tender_no: str) -> int:
        """How many sheets the tender has (``sheet_count``), from the members' tallies."""
        return sum(sheets for _, sheets
                   in _driver_rows(self._connection, _MEMBER_TALLIES, (tender_no,)))

    def sheets_by_others(self, tender_no: str, members: Sequence[str]) -> int:
        """How many of the tender's sheets are by someone not among ``members``."""
        s = self._s
        return int(self._connection.execute(
            select(func.count()).select_from(s).where(and_(
                s.c.tender_no == tender_no, s.c.member_id.not_in(list(members)))))
            .scalar_one())

    def sheets(self, tender_no: str) -> list[Row[Any]]:
        return list(self._connection.execute(
            select(self._s).where(self._s.c.tender_no == tender_no)
            .order_by(self._s.c.bidder_id, self._s.c.member_id)))

    def add_sheet(self, tender_no: str, *, member_id: str, bidder_id: str, compliant: bool,
                  technical: int, business: int, system: str, at: datetime,
                  statement: dict[str, Any]) -> None:
        self._connection.execute(insert(self._s).values(
            tender_no=tender_no, member_id=member_id, bidder_id=bidder_id,
            compliant=compliant, technical=technical, business=business, system=system,
            submitted_at=at, statement=json.dumps(statement, ensure_ascii=False)))
        # The tallies the ranking reads, in the same transaction as the sheet.
        mark = _PARAMETER_MARKS[self._connection.dialect.paramstyle]
        self._connection.exec_driver_sql(
            _ADD_TO_BID_TALLY.replace("?", mark),
            (tender_no, bidder_id, int(bool(compliant)), technical, business))
        self._connection.exec_driver_sql(_ADD_TO_MEMBER_TALLY.replace("?", mark),
                                         (tender_no, member_id))


@dataclass(frozen=True)
class PageOfListings:
    """What a page of listings shows besides their rows, by listing number."""

    announcements: dict[str, dict[str, Any]]
    acts: dict[str, list[ListingAct]]
    steps: dict[str, list[Row[Any]]]


class Listings:
    """Repository of the land and property-rights listings, their acts and steps."""

    def __init__(self, connection: Connection, monitor: Monitor) -> None:
        self._connection = connection
        self._monitor = monitor
        self._t = tables.listings
        self._a = tables.listing_acts
        self._s = tables.listing_steps
        self._o = tables.listing_act_origins

    @staticmethod
    def _listing(row: Row[Any]) -> ListingRecord:
        entry = json.loads(row.announcement)["body"].get("entry_code", "")
        return ListingRecord(row.listing_no, row.project_no, row.category, row.stage,
                             row.published_at, row.opens_at, row.closes_at,
                             row.workflow_started, entry, row.buyer_id, row.deal_price_fen,
                             row.deal_method, row.failure, row.concluded_at)

    def get(self, listing_no: str, *, for_update: bool = False) -> ListingRecord | None:
        query = select(self._t).where(self._t.c.listing_no == listing_no)
        if for_update:
            query = query.with_for_update()
        row = self._connection.execute(query).first()
        return self._listing(row) if row else None

    def by_request(self, request_id: str) -> ListingRecord | None:
        row = self._connection.execute(
            select(self._t).where(self._t.c.request_id == request_id)).first()
        return self._listing(row) if row else None

    def of_project(self, project_no: str) -> str | None:
        """The project's listing that did not fail (running or sold), if any: a failed
        listing does not keep its project from being listed again."""
        return self._connection.execute(
            select(self._t.c.listing_no).where(and_(
                self._t.c.project_no == project_no, self._t.c.stage != "failed"))).scalar()

    def page(self, *, category: str = "", stage: str = "", after: str = "",
             limit: int) -> list[ListingRecord]:
        """The listings after ``after`` by number, of a category and a stage ('' for all)."""
        query = select(self._t).where(self._t.c.listing_no > after)
        if category:
            query = query.where(self._t.c.category == category)
        if stage:
            query = query.where(self._t.c.stage == stage)
        return [self._listing(r) for r in self._connection.execute(
            query.order_by(self._t.c.listing_no).limit(limit))]

    def page_of(self, listing_nos: Sequence[str]) -> PageOfListings:
        """The announcements, acts and steps of these listings, in one query each (a page
        of ListListings is read in a bounded number of queries, whatever its size)."""
        page = PageOfListings({n: {} for n in listing_nos},
                              {n: [] for n in listing_nos}, {n: [] for n in listing_nos})
        if not listing_nos:
            return page
        wanted = list(listing_nos)
        for number, kept in self._connection.execute(
                select(self._t.c.listing_no, self._t.c.announcement)
                .where(self._t.c.listing_no.in_(wanted))):
            page.announcements[number] = json.loads(kept)
        for r in self._connection.execute(
                select(self._a).where(self._a.c.listing_no.in_(wanted))
                .order_by(self._a.c.listing_no, self._a.c.position)):
            page.acts[r.listing_no].append(ListingAct(r.kind, r.bidder_id, r.amount_fen, r.at))
        for r in self._connection.execute(
                select(self._s).where(self._s.c.listing_no.in_(wanted))
                .order_by(self._s.c.listing_no, self._s.c.at, self._s.c.feed_sequence)):
            page.steps[r.listing_no].append(r)
        return page

    def announcement(self, listing_no: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self._connection.execute(
            select(self._t.c.announcement).where(self._t.c.listing_no == listing_no)
        ).scalar_one())
        return found

    def add(self, listing: ListingRecord, *, request_id: str,
            announcement: dict[str, Any]) -> None:
        self._connection.execute(insert(self._t).values(
            listing_no=listing.listing_no, request_id=request_id,
            project_no=listing.project_no, category=listing.category, stage=listing.stage,
            published_at=listing.published_at, opens_at=listing.opens_at,
            closes_at=listing.closes_at,
            announcement=json.dumps(announcement, ensure_ascii=False),
            workflow_started=False, buyer_id="", deal_price_fen=0, deal_method="",
            failure="", concluded_at=None))

    def unstarted(self, *, limit: int = 100) -> list[str]:
        return list(self._connection.execute(
            select(self._t.c.listing_no).where(self._t.c.workflow_started.is_(False))
            .order_by(self._t.c.listing_no).limit(limit)).scalars())

    def mark_started(self, listing_no: str) -> bool:
        """True if this call marked it (it was pending)."""
        result = self._connection.execute(
            update(self._t).where(and_(self._t.c.listing_no == listing_no,
                                       self._t.c.workflow_started.is_(False)))
            .values(workflow_started=True))
        return bool(result.rowcount)

    def save_state(self, listing_no: str, **values: Any) -> None:
        self._connection.execute(
            update(self._t).where(self._t.c.listing_no == listing_no).values(**values))

    def acts(self, listing_no: str) -> list[ListingAct]:
        return [ListingAct(r.kind, r.bidder_id, r.amount_fen, r.at)
                for r in self._connection.execute(
                    select(self._a).where(self._a.c.listing_no == listing_no)
                    .order_by(self._a.c.position))]

    def act(self, listing_no: str, act_key: str) -> Row[Any] | None:
        return self._connection.execute(
            select(self._a).where(and_(self._a.c.listing_no == listing_no,
                                       self._a.c.act_key == act_key))).first()

    def add_act(self, listing_no: str, act_key: str, act: ListingAct, *,
                statement: dict[str, Any], terms_sha256: str) -> None:
        last = self._connection.execute(
            select(func.max(self._a.c.position)).where(self._a.c.listing_no == listing_no)
        ).scalar()
        self._connection.execute(insert(self._a).values(
            listing_no=listing_no, act_key=act_key, position=int(last or 0) + 1,
            kind=act.kind, bidder_id=act.bidder_id, amount_fen=act.amount_fen, at=act.at,
            statement=json.dumps(statement, ensure_ascii=False), terms_sha256=terms_sha256))
        # An act sent before migration 0018 and recorded after it: its note was made
        # without a digest (''); it is this act's note, so it takes the act's digest
        # (else the act would find no note, and raise no alert).
        own = select(self._o.c.act_key).where(and_(
            self._o.c.listing_no == listing_no, self._o.c.act_key == act_key,
            self._o.c.terms_sha256 == terms_sha256))
        self._connection.execute(update(self._o).where(and_(
            self._o.c.listing_no == listing_no, self._o.c.act_key == act_key,
            self._o.c.terms_sha256 == "", ~own.exists())).values(terms_sha256=terms_sha256))

    def step(self, listing_no: str, step_key: str) -> Row[Any] | None:
        return self._connection.execute(
            select(self._s).where(and_(self._s.c.listing_no == listing_no,
                                       self._s.c.step_key == step_key))).first()

    def steps(self, listing_no: str) -> list[Row[Any]]:
        return list(self._connection.execute(
            select(self._s).where(self._s.c.listing_no == listing_no)
            .order_by(self._s.c.at, self._s.c.feed_sequence)))

    def add_step(self, listing_no: str, step_key: str, *, step: str, at: datetime,
                 feed_sequence: int, statement: dict[str, Any],
                 details: dict[str, Any] | None = None) -> None:
        """Record the step, and for monitoring the step at the listing's stage as it now
        stands (its state saved first)."""
        self._connection.execute(insert(self._s).values(
            listing_no=listing_no, step_key=step_key, step=step, at=at,
            feed_sequence=feed_sequence, statement=json.dumps(statement, ensure_ascii=False)))
        stage = self._connection.execute(
            select(self._t.c.stage).where(self._t.c.listing_no == listing_no)).scalar_one()
        self._monitor.record(NewTradeStep(f"listing/{listing_no}", "listing", step, stage, at,
                                          feed_sequence, details or {}),
                             self._act_alerts(listing_no, step_key, step))

    def note_origin(self, listing_no: str, act_key: str, terms_sha256: str, origin: str, *,
                    at: datetime) -> None:
        """Note the network origin of the act asking the terms ``terms_sha256`` to be
        recorded under ``act_key``; the first attempt's stays (a retry of the act is the same
        act). Another content under the key has its own note."""
        if self._connection.execute(select(self._o.c.origin).where(and_(
                self._o.c.listing_no == listing_no, self._o.c.act_key == act_key,
                self._o.c.terms_sha256 == terms_sha256))).first():
            return
        self._connection.execute(insert(self._o).values(
            listing_no=listing_no, act_key=act_key, terms_sha256=terms_sha256,
            origin=origin, noted_at=at))

    def forget_origin(self, listing_no: str, act_key: str, terms_sha256: str) -> None:
        """Delete the note of the act ``act_key`` asking the terms ``terms_sha256`` unless
        that act was recorded; another content's note under the key stays (it may be the
        one in flight, to be recorded)."""
        recorded = select(self._a.c.act_key).where(and_(
            self._a.c.listing_no == listing_no, self._a.c.act_key == act_key,
            self._a.c.terms_sha256 == terms_sha256))
        self._connection.execute(delete(self._o).where(and_(
            self._o.c.listing_no == listing_no, self._o.c.act_key == act_key,
            self._o.c.terms_sha256 == terms_sha256, ~recorded.exists())))

    def forget_unrecorded_origins(self, listing_no: str) -> None:
        """Delete the listing's notes of acts never recorded (sent while Temporal was out of
        reach, and not again; or another content under a recorded act's request id): once
        the listing is settled no act can come for them, and only a recorded act's note is
        read (``_act_alerts``)."""
        recorded = select(self._a.c.act_key).where(and_(
            self._a.c.listing_no == listing_no, self._a.c.act_key == self._o.c.act_key,
            self._a.c.terms_sha256 == self._o.c.terms_sha256))
        self._connection.execute(delete(self._o).where(and_(
            self._o.c.listing_no == listing_no, ~recorded.exists())))

    def _act_alerts(self, listing_no: str, step_key: str, step: str) -> list[Alert]:
        """The monitoring alerts on a bidder's act recorded as ``step_key``: other bidders'
        acts on the listing from its network origin."""
        act = self.act(listing_no, step_key)
        if act is None:
            return []
        # The note of the recorded act's own content (not of another under its request id).
        origin = self._connection.execute(select(self._o.c.origin).where(and_(
            self._o.c.listing_no == listing_no, self._o.c.act_key == step_key,
            self._o.c.terms_sha256 == act.terms_sha256))).scalar()
        if not origin:
            return []
        others = [ActSeen(r.bidder_id, r.origin) for r in self._connection.execute(
            select(self._a.c.bidder_id, self._o.c.origin).join(self._o, and_(
                self._o.c.listing_no == self._a.c.listing_no,
                self._o.c.act_key == self._a.c.act_key,
                self._o.c.terms_sha256 == self._a.c.terms_sha256))
            .where(and_(self._a.c.listing_no == listing_no,
                        self._a.c.bidder_id != act.bidder_id,
                        self._o.c.origin == origin)))]
        return alerts_on_listing_act(ActSeen(act.bidder_id, origin), others, act=step)

    def deals(self, start: datetime, end: datetime) -> list[Deal]:
        """The listings sold in [start, end): at their conclusion, worth their price."""
        t = self._t
        return [Deal(DealSource.LISTING, r.category, r.concluded_at, r.deal_price_fen)
                for r in self._connection.execute(
                    select(t.c.category, t.c.concluded_at, t.c.deal_price_fen).where(and_(
                        t.c.stage == "sold", t.c.concluded_at >= start,
                        t.c.concluded_at < end)))]


class TradingUnitOfWork(UnitOfWork):
    catalogue: Catalogue
    agencies: Agencies
    experts: ExpertPool
    departments: Departments
    staff: StaffDirectory
    audit: AuditLog
    feed: Feed
    draws: Draws
    bidders: Bidders
    projects: Projects
    tenders: Tenders
    listings: Listings
    monitor: Monitor
    evaluations: Evaluations
    sequences: RunningNumbers

    def bind(self, connection: Connection) -> None:
        self.catalogue = Catalogue(connection)
        self.agencies = Agencies(connection)
        self.experts = ExpertPool(connection)
        self.departments = Departments(connection, tables.departments)
        self.staff = StaffDirectory(connection, tables.officials)
        self.audit = AuditLog(connection, tables.audit_log)
        self.feed = Feed(connection)
        self.draws = Draws(connection)
        self.bidders = Bidders(connection)
        self.projects = Projects(connection, self.catalogue)
        self.monitor = Monitor(connection)
        self.tenders = Tenders(connection, self.monitor)
        self.listings = Listings(connection, self.monitor)
        self.evaluations = Evaluations(connection)
        self.sequences = RunningNumbers(connection, tables.sequences)
