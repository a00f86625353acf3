"""The public feed and the verifiable draws: use cases, one function each, on a unit of work.

Who may do what, through the registry of calling systems:

- opening a draw needs a trading officer, spoken for by a system the
  registry lets speak for one (the trading platform, the operator console),
  and at least one witness that system may not speak for in any role (an
  independent witness), so that no one system commits every seed; it is for
  a subject without a draw that has not failed (a re-draw names the
  subject's latest failed draw), and its candidates are built here from the
  registry, never given by the opener;
- committing and revealing a seed need the witness itself: the acting official must be a
  witness of the draw, holding a supervisor's or trading officer's role the
  calling system may speak for (the supervision system for the discipline
  inspection group's supervisors, the trading platform for the center's
  trading officers). So no system can reveal for a witness it does not speak
  for, and the official opening a draw cannot be one of its witnesses;
- the feed and the draws are public reads of every registered system.

Audit entries name officials by id; seeds are never written to the audit log
or the logs (the feed publishes them with the result).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import structlog
from sqlalchemy.exc import IntegrityError

from kernel.audit import Actor
from kernel.directory import require_official, spoken_roles
from kernel.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from kernel.identity import Caller
from kernel.signing import ServiceSigner
from services.trading.db.repository import StoredDraw, TradingUnitOfWork
from services.trading.domain.draws import (
    WITNESS_ROLES,
    DrawPurpose,
    DrawSpec,
    DrawState,
    FeedKind,
    agency_candidates,
    check_commit,
    check_reveal,
    check_spec,
    commitment_of,
    expert_candidates,
    opened_body,
    outcome,
    result_body,
    subject_of,
    uncommitted_body,
    utc_text,
    with_candidates,
)
from services.trading.domain.feed import FeedEntry, FeedLink, NewFeedEntry

log = structlog.get_logger("govhall.trading.draws")

TRADING_OFFICER = "trading_officer"
DEFAULT_FEED_PAGE = 50
MAX_FEED_PAGE = 500


@dataclass(frozen=True)
class FeedPage:
    entries: list[FeedEntry]
    next_cursor: int


def list_feed(*, uow: TradingUnitOfWork, cursor: int, requested_size: int) -> FeedPage:
    """The entries after ``cursor``, in order; the cursor to continue from."""
    if cursor < 0:
        raise InvalidArgument("cursor must not be negative",
                              violations=[FieldViolation("cursor", "must not be negative")])
    size = min(requested_size or DEFAULT_FEED_PAGE, MAX_FEED_PAGE)
    with uow:
        entries = uow.feed.after(cursor, limit=size)
    return FeedPage(entries, entries[-1].sequence if entries else cursor)


def read_feed(*, uow: TradingUnitOfWork, sequence: int) -> FeedEntry:
    with uow:
        entry = uow.feed.get(sequence)
    if entry is None:
        raise NotFound(f"the feed has no entry {sequence}")
    return entry


def _publish(uow: TradingUnitOfWork, signer: ServiceSigner, kind: FeedKind, draw_id: str,
             body: dict[str, object], *, at: datetime) -> int:
    """Append ``body``, with its place in the feed's chain, signed with the trading
    service's key; the entry's sequence."""
    def make(link: FeedLink) -> NewFeedEntry:
        chained = body | {"feed": link.as_dict(utc_text(link.published_at))}
        return NewFeedEntry.of(str(kind), subject_of(draw_id), signer.sign(chained).as_dict())

    return uow.feed.append(make, at=at)


def _witnesses_exist(uow: TradingUnitOfWork, spec: DrawSpec, caller: Caller) -> set[str]:
    """The ids of the independent witnesses (those ``caller``'s system may not speak for
    in any role); InvalidArgument if a witness is unknown or none is independent."""
    problems: list[FieldViolation] = []
    for index, witness in enumerate(spec.witnesses):
        official = uow.staff.get(witness.official_id)
        if official is None:
            problems.append(FieldViolation(
                f"witness_ids[{index}]",
                f"{witness.official_id} is not in the staff directory"))
        elif not official.roles & set(WITNESS_ROLES):
            problems.append(FieldViolation(
                f"witness_ids[{index}]",
                f"{witness.official_id} holds none of the roles a witness holds "
                f"({', '.join(WITNESS_ROLES)})"))
    independent = {
        official.id for official in (uow.staff.get(w.official_id) for w in spec.witnesses)
        if official is not None
        and not spoken_roles(caller, official.department_code, official.roles)}
    if not problems and not independent:
        problems.append(FieldViolation(
            "witness_ids", f"at least one witness must be an official system {caller.system} "
            "may not speak for (an independent witness), so that no one system commits "
            "every seed"))
    if problems:
        raise InvalidArgument(
            f"draw {spec.draw_id} cannot be opened: "
            + "; ".join(f"{p.field} {p.description}" for p in problems), violations=problems)
    return independent


def _subject_free(spec: DrawSpec, earlier: list[tuple[str, DrawState]]) -> None:
    """Refuse a draw of a subject that has a draw which has not failed (ALREADY_EXISTS),
    or a re-draw not naming the subject's latest failed draw (FAILED_PRECONDITION);
    ``earlier`` are the subject's draws (id, state) in the order they were opened."""
    live = [(draw_id, state) for draw_id, state in earlier if state is not DrawState.FAILED]
    if live:
        raise _live_draw(spec, *live[0])
    latest = earlier[-1][0] if earlier else ""
    if spec.replaces_draw_id == latest:
        return
    if not latest:
        raise FailedPrecondition(
            f"draw {spec.draw_id} cannot be opened: replaces_draw_id names "
            f"{spec.replaces_draw_id}, but {spec.subject} has had no draw; leave it empty")
    if not spec.replaces_draw_id:
        raise FailedPrecondition(
            f"draw {spec.draw_id} cannot be opened: {spec.subject} was drawn for before and "
            f"its latest draw, {latest}, failed; a re-draw names it in replaces_draw_id")
    raise FailedPrecondition(
        f"draw {spec.draw_id} cannot be opened: replaces_draw_id names "
        f"{spec.replaces_draw_id}, but the latest failed draw of {spec.subject} is {latest}")


def _live_draw(spec: DrawSpec, draw_id: str, state: DrawState) -> AlreadyExists:
    return AlreadyExists(
        f"draw {spec.draw_id} cannot be opened: {spec.subject} has a draw that has not "
        f"failed, {draw_id} ({state}); a subject has one draw at a time, and a new one "
        "may be opened only once that one has failed publicly, naming it in "
        "replaces_draw_id")


def _candidates(uow: TradingUnitOfWork, spec: DrawSpec) -> DrawSpec:
    """The draw with its candidates built from the registry: every agency for an agency
    lottery; for an expert draw, the available experts of the specialties, minus the
    conflicted employers' experts and the exclusions."""
    if spec.purpose is DrawPurpose.AGENCY_LOTTERY:
        return with_candidates(spec, agency_candidates(uow.agencies.codes()))
    pool = uow.experts.list()
    known = {expert.id for expert in pool}
    unknown = [FieldViolation(f"exclusions[{index}].expert_id",
                              f"{exclusion.expert_id} is not in the expert pool")
               for index, exclusion in enumerate(spec.exclusions)
               if exclusion.expert_id not in known]
    if unknown:
        raise InvalidArgument(
            f"draw {spec.draw_id} cannot be opened: "
            + "; ".join(f"{p.field} {p.description}" for p in unknown), violations=unknown)
    return with_candidates(spec, expert_candidates(
        pool, specialties=spec.specialties, conflicted_employers=spec.conflicted_employers,
        exclusions=spec.exclusions))


def open_draw(*, uow: TradingUnitOfWork, signer: ServiceSigner, caller: Caller,
              spec: DrawSpec, now: datetime) -> StoredDraw:
    """Open a new draw for its subject: its candidates (built here from the registry)
    and witnesses are fixed, nothing is published until every witness has committed
    (``commit_seed``).

    Opening the same draw again (a retry, also one racing the first call)
    returns it as it stands; another draw under a taken id is ALREADY_EXISTS;
    so is a draw of a subject that has a draw which has not failed, also when
    two calls race (the loser's insert hits the partial unique index on the
    live subject). A re-draw must name the subject's latest failed draw.
    """
    try:
        with uow:
            official = require_official(uow.staff, caller, role=TRADING_OFFICER)
            existing = uow.draws.get(spec.draw_id)
            if existing is not None:
                return _same_or_refused(existing, spec, official.id)
            check_spec(spec, opened_by=official.id, now=now)
            independent = _witnesses_exist(uow, spec, caller)
            earlier = uow.draws.of_subject(spec.subject)
            if any(draw_id == spec.draw_id for draw_id, _ in earlier):
                # This very id, opened by a concurrent call that committed meanwhile.
                return _same_or_refused(_existing(uow, spec.draw_id), spec, official.id)
            _subject_free(spec, earlier)
            built = _candidates(uow, spec)
            uow.draws.add(built.with_independent(independent), opened_by=official.id,
                          opened_at=now, opened_sequence=0)
            uow.audit.append(actor=Actor(caller.system, official.id), action="draw.opened",
                             subject=subject_of(spec.draw_id),
                             details={"purpose": str(spec.purpose), "subject": spec.subject,
                                      "replaces_draw_id": spec.replaces_draw_id,
                                      "candidates": len(built.candidates), "count": spec.count,
                                      "exclusions": len(spec.exclusions),
                                      "witnesses": spec.witness_ids(),
                                      "independent": sorted(independent)}, at=now)
            uow.commit()
    except IntegrityError:
        # The same id, or another live draw of the subject, inserted by a concurrent
        # call that committed first (PostgreSQL waits for it on the primary key or the
        # partial unique index of live subjects, then refuses this insert).
        with uow:
            existing = uow.draws.get(spec.draw_id)
            if existing is not None:
                return _same_or_refused(existing, spec, official.id)
            live = [(draw_id, state) for draw_id, state in uow.draws.of_subject(spec.subject)
                    if state is not DrawState.FAILED]
            if not live:
                raise
            raise _live_draw(spec, *live[0]) from None
    return _get(uow, spec.draw_id)


def _same_or_refused(existing: StoredDraw, spec: DrawSpec, opened_by: str) -> StoredDraw:
    """``existing`` when it is the draw asked for (a retry); ALREADY_EXISTS otherwise."""
    if existing.opened_by == opened_by and _as_opened(existing.spec) == spec:
        return existing
    raise AlreadyExists(f"draw id {spec.draw_id} is taken by another draw: choose another id")


def _as_opened(spec: DrawSpec) -> DrawSpec:
    """The draw as its opener asked for it: without the candidates the service built,
    the witnesses' commitments and the independence the service recorded."""
    return replace(spec, candidates=(), witnesses=tuple(
        replace(w, commitment="", independent=False) for w in spec.witnesses))


def _get(uow: TradingUnitOfWork, draw_id: str) -> StoredDraw:
    with uow:
        return _existing(uow, draw_id)


def _existing(uow: TradingUnitOfWork, draw_id: str, *, for_update: bool = False) -> StoredDraw:
    draw = uow.draws.get(draw_id, for_update=for_update)
    if draw is None:
        raise NotFound(f"there is no draw {draw_id}")
    return draw


def get_draw(*, uow: TradingUnitOfWork, draw_id: str) -> StoredDraw:
    return _get(uow, draw_id)


def _close(uow: TradingUnitOfWork, signer: ServiceSigner, draw: StoredDraw, *, actor: Actor,
           now: datetime) -> None:
    """Compute the draw from the seeds revealed so far and publish the signed result."""
    spec = draw.spec
    result = outcome(spec, uow.draws.seeds(spec.draw_id))
    opened = uow.feed.get(draw.opened_sequence)
    assert opened is not None  # published in the transaction that made the draw
    body = result_body(spec, result, opened_sequence=draw.opened_sequence,
                       opened_sha256=opened.body_sha256, closed_at=now)
    kind = FeedKind.DRAW_DRAWN if result.state is DrawState.DRAWN else FeedKind.DRAW_FAILED
    sequence = _publish(uow, signer, kind, spec.draw_id, body, at=now)
    uow.draws.close(spec.draw_id, state=result.state, result_sequence=sequence, outcome={
        "randomness": result.randomness, "order": list(result.order),
        "drawn": list(result.drawn), "missing": list(result.missing)})
    uow.audit.append(actor=actor, action=str(kind), subject=subject_of(spec.draw_id),
                     details={"feed_sequence": sequence, "revealed": len(result.revealed),
                              "missing": list(result.missing)}, at=now)


def _fail_uncommitted(uow: TradingUnitOfWork, signer: ServiceSigner, draw: StoredDraw, *,
                      actor: Actor, now: datetime) -> None:
    """Publish the failure of a draw some witness did not commit to by the deadline."""
    spec = draw.spec
    body = uncommitted_body(spec, opened_by=draw.opened_by, closed_at=now)
    missing = [w.official_id for w in spec.uncommitted()]
    sequence = _publish(uow, signer, FeedKind.DRAW_FAILED, spec.draw_id, body, at=now)
    uow.draws.close(spec.draw_id, state=DrawState.FAILED, result_sequence=sequence,
                    outcome={"randomness": "", "order": [], "drawn": [], "missing": missing})
    uow.audit.append(actor=actor, action=str(FeedKind.DRAW_FAILED),
                     subject=subject_of(spec.draw_id),
                     details={"feed_sequence": sequence, "stage": "commit",
                              "missing": missing}, at=now)


def _used(commitment: str) -> AlreadyExists:
    return AlreadyExists(
        "this commitment was given for an earlier draw: a seed is used for one draw only; "
        "choose a new random seed")


def commit_seed(*, uow: TradingUnitOfWork, signer: ServiceSigner, caller: Caller,
                draw_id: str, commitment: str, now: datetime) -> StoredDraw:
    """Record a witness's commitment; the last one publishes the draw's opening.

    A commitment given for any earlier draw (by any witness) is refused,
    ALREADY_EXISTS: a seed is used for one draw only, also when two draws
    take the same commitment at once (the loser's insert hits its primary key).
    """
    try:
        return _commit_seed(uow=uow, signer=signer, caller=caller, draw_id=draw_id,
                            commitment=commitment, now=now)
    except IntegrityError:
        with uow:
            if uow.draws.commitment_used_in(commitment) is None:
                raise
        raise _used(commitment) from None


def _commit_seed(*, uow: TradingUnitOfWork, signer: ServiceSigner, caller: Caller,
                 draw_id: str, commitment: str, now: datetime) -> StoredDraw:
    with uow:
        official = require_official(uow.staff, caller, role=WITNESS_ROLES)
        draw = _existing(uow, draw_id, for_update=True)
        if not check_commit(draw.spec, draw.state, witness_id=official.id,
                            commitment=commitment, now=now):
            return draw  # a retry of the commitment recorded
        used_in = uow.draws.commitment_used_in(commitment)
        if used_in is not None:
            raise _used(commitment)
        actor = Actor(caller.system, official.id)
        spec = draw.spec.with_commitment(official.id, commitment)
        uow.draws.save_commitments(spec)
        uow.draws.add_commitment(commitment, draw_id=draw_id, official_id=official.id)
        details: dict[str, object] = {}
        if not spec.uncommitted():
            # Every witness has committed: publish candidates and commitments.
            body = opened_body(spec, opened_by=draw.opened_by, opened_at=now)
            sequence = _publish(uow, signer, FeedKind.DRAW_OPENED, draw_id, body, at=now)
            uow.draws.publish(draw_id, opened_sequence=sequence)
            details = {"feed_sequence": sequence}
        uow.audit.append(actor=actor, action="draw.seed_committed",
                         subject=subject_of(draw_id), details=details, at=now)
        uow.commit()
    return _get(uow, draw_id)


def reveal_seed(*, uow: TradingUnitOfWork, signer: ServiceSigner, caller: Caller,
                draw_id: str, seed: bytes, now: datetime) -> StoredDraw:
    """Record a witness's seed; the last one closes the draw and publishes its result.

    A retry of a reveal already recorded (the same witness, a seed matching
    its commitment, so the same seed) returns the draw as it stands, also
    once the reveal closed the draw.
    """
    with uow:
        official = require_official(uow.staff, caller, role=WITNESS_ROLES)
        draw = _existing(uow, draw_id, for_update=True)
        if official.id in draw.revealed and commitment_of(seed) in {
                w.commitment for w in draw.spec.witnesses if w.official_id == official.id}:
            return draw  # a retry: the seed matches, so it is the seed recorded
        check_reveal(draw.spec, draw.state, witness_id=official.id, seed=seed, now=now,
                     revealed=draw.revealed)
        actor = Actor(caller.system, official.id)
        uow.draws.add_seed(draw_id, official.id, seed, at=now)
        # The feed's lock before the audit log's, as everywhere (no deadlock on PostgreSQL).
        if draw.revealed | {official.id} >= set(draw.spec.witness_ids()):
            _close(uow, signer, draw, actor=actor, now=now)
        uow.audit.append(actor=actor, action="draw.seed_revealed",
                         subject=subject_of(draw_id), details={}, at=now)
        uow.commit()
    return _get(uow, draw_id)


def close_overdue_draws(*, unit: Callable[[], TradingUnitOfWork], signer: ServiceSigner,
                        service: str, now: datetime) -> list[str]:
    """Close every open draw whose reveal deadline has come; the ids closed."""
    with unit() as uow:
        due = uow.draws.overdue(now)
    closed: list[str] = []
    for draw_id in due:
        with unit() as uow:
            draw = _existing(uow, draw_id, for_update=True)
            spec = draw.spec
            if draw.state is DrawState.OPEN and spec.reveal_deadline <= now:
                _close(uow, signer, draw, actor=Actor(service), now=now)
            elif (draw.state is DrawState.COMMITTING and spec.commit_deadline is not None
                  and spec.commit_deadline <= now):
                _fail_uncommitted(uow, signer, draw, actor=Actor(service), now=now)
            else:
                continue  # another replica closed it meanwhile
            uow.commit()
            closed.append(draw_id)
    return closed


async def close_at_deadlines(*, unit: Callable[[], TradingUnitOfWork], signer: ServiceSigner,
                             service: str, poll_seconds: float) -> None:
    """Until cancelled: every ``poll_seconds``, close the draws whose deadline has come."""
    while True:
        try:
            closed = await asyncio.to_thread(close_overdue_draws, unit=unit, signer=signer,
                                             service=service, now=datetime.now(UTC))
            if closed:
                log.info("draws.closed_at_deadline", draws=closed)
        except asyncio.CancelledError:
            raise
        except Exception:  # a database outage: try again next round
            log.exception("draws.closing_failed")
        await asyncio.sleep(poll_seconds)
