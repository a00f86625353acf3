"""The electronic evaluation of a tender (issue #9 item 4): the committee drawn and seated,
the members' score sheets, the ranking. Rules: services/trading/domain/evaluation.py;
in words: docs/tenders.md ("Evaluation").

1. Once the decryption window has closed, a trading officer opens the expert draw
   (``draw_committee``): subject ``tender/<no>/experts``, the experts of the given
   specialties minus those employed by the tenderer or any bidder of the tender (the
   conflicted employers are computed here, from the departments and bidders
   directories, not typed by the officer), count = the committee's experts.
2. When the draw is drawn, the officer seats the committee (``prepare_committee``): the
   members are the draw's signed result (``draw.drawn``) plus the tenderer's
   representatives; the statement names the result entry and its SHA-256, and the
   recording activity (``record_committee``) checks both against the feed again.
3. Each member scores each valid bid once (``prepare_score_sheet``), through its own
   system: an expert's system is the one ``expert_systems`` names for it, a
   representative's any system that speaks for that official. The sheet is signed
   here, checked by the workflow's validator and recorded by ``record_sheet``, which
   computes the ranking when the last sheet is in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kernel.directory import acting_official, require_official, spoken_roles
from kernel.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from kernel.identity import Caller
from kernel.signing import BadSignature, ServiceSigner, Signed, TrustedKeys
from services.trading.app import draws as draw_cases
from services.trading.app.request_ids import Asked, answer_again
from services.trading.app.tenders import TRADING_OFFICER, PreparedAct
from services.trading.db.repository import StoredDraw, TradingUnitOfWork
from services.trading.domain.draws import DrawPurpose, DrawSpec, DrawState, Witness
from services.trading.domain.evaluation import (
    DEFAULT_METHOD,
    DEFAULT_WEIGHTS,
    Evaluation,
    Method,
    ScoreSheet,
    Weights,
    check_sheet,
    committee_shape,
    rank,
    stated_price,
)
from services.trading.domain.model import act_key
from services.trading.domain.sealed_bids import SealedBidError, open_bid
from services.trading.domain.tenders import Committee, Envelope, Tender, TenderStage
from workflows.approval_contract import as_statement
from workflows.tender_contract import (
    OfficialAct,
    StatementKind,
    TenderFacts,
    tender_statement_body,
)


def expert_subject(tender_no: str) -> str:
    return f"tender/{tender_no}/experts"


def _tender_in_evaluation(uow: TradingUnitOfWork, tender_no: str) -> Tender:
    tender = uow.tenders.get(tender_no)
    if tender is None:
        raise NotFound(f"tender {tender_no} is not known")
    if tender.stage != TenderStage.EVALUATION:
        raise FailedPrecondition(f"tender {tender_no} is at {tender.stage}: the committee "
                                 "is drawn and scores once the decryption window has closed")
    return tender


def conflicted_employers(uow: TradingUnitOfWork, tender: Tender) -> list[str]:
    """The organisations of the parties: the tenderer's department and every bidder of the
    tender (valid or not), by their names as the directories hold them, sorted."""
    project = uow.projects.get(tender.project_no)
    assert project is not None
    names = set()
    department = uow.departments.get(project.department_code)
    if department is not None:
        names.add(department.name)
    for bidder_id, _, _ in uow.tenders.commitments(tender.tender_no):
        bidder = uow.bidders.get(bidder_id)
        if bidder is not None:
            names.add(bidder.name)
    return sorted(names)


def evaluation_method(uow: TradingUnitOfWork, tender_no: str) -> tuple[Method, Weights]:
    """The method and weights the signed announcement chose (the defaults when none)."""
    facts = TenderFacts.read(uow.tenders.announcement(tender_no)["body"])
    method = Method(facts.evaluation_method) if facts.evaluation_method else DEFAULT_METHOD
    weights = Weights(*facts.weights) if len(facts.weights) == 3 else DEFAULT_WEIGHTS
    return method, weights


@dataclass(frozen=True)
class CommitteeDraw:
    draw: StoredDraw
    committee: Committee
    conflicted_employers: list[str]


def draw_committee(*, uow: TradingUnitOfWork, signer: ServiceSigner, caller: Caller,
                   tender_no: str, draw_id: str, specialties: list[str], committee_size: int,
                   representative_ids: list[str], witness_ids: list[str],
                   commit_deadline: datetime, reveal_deadline: datetime,
                   now: datetime) -> CommitteeDraw:
    """Open the verifiable draw of the committee's experts (draws.open_draw), with the
    conflicted employers computed here; the committee's plan kept for its seating.

    A retry (the same draw again) answers as the first call; a committee seated already
    is ALREADY_EXISTS. After a failed draw, the next one replaces it (named by the
    service, as the draw rules require).
    """
    shape = committee_shape(size=committee_size, representatives=len(representative_ids))
    if len(set(representative_ids)) != len(representative_ids):
        raise InvalidArgument("a representative is named twice",
                              violations=[FieldViolation("representative_ids", "repeated")])
    with uow:
        require_official(uow.staff, caller, role=TRADING_OFFICER)
        tender = _tender_in_evaluation(uow, tender_no)
        committee = uow.evaluations.committee(tender_no)
        if committee is not None and committee.members:
            raise AlreadyExists(f"tender {tender_no} has its committee seated already")
        project = uow.projects.get(tender.project_no)
        assert project is not None
        for index, official_id in enumerate(representative_ids):
            official = uow.staff.get(official_id)
            if official is None or official.department_code != project.department_code:
                raise InvalidArgument(
                    f"{official_id} is not an official of the tenderer "
                    f"({project.department_code})",
                    violations=[FieldViolation(f"representative_ids[{index}]",
                                               "not the tenderer's official")])
        conflicted = conflicted_employers(uow, tender)
        earlier = uow.draws.of_subject(expert_subject(tender_no))
    replaces = ""
    if earlier and all(state is DrawState.FAILED for _, state in earlier) and \
            all(d != draw_id for d, _ in earlier):
        replaces = earlier[-1][0]
    spec = DrawSpec(
        draw_id=draw_id, purpose=DrawPurpose.EXPERT_DRAW,
        title=f"{tender_no} 评标委员会专家抽取", candidates=(),
        witnesses=tuple(Witness(w, "") for w in witness_ids), count=shape.experts,
        reveal_deadline=reveal_deadline, commit_deadline=commit_deadline,
        subject=expert_subject(tender_no), replaces_draw_id=replaces,
        specialties=tuple(specialties), conflicted_employers=tuple(conflicted))
    draw = draw_cases.open_draw(uow=uow, signer=signer, caller=caller, spec=spec, now=now)
    planned = Committee(tender_no, draw_id, committee_size, tuple(representative_ids))
    with uow:
        current = uow.evaluations.committee(tender_no)
        if current is None or (current.draw_id != draw_id and not current.members):
            uow.evaluations.plan_committee(planned)
            uow.commit()
        elif current.draw_id == draw_id:
            planned = current
    return CommitteeDraw(draw, planned, conflicted)


def _drawn_result(uow: TradingUnitOfWork, draw_id: str) -> tuple[int, str, list[str]]:
    """The draw's signed result entry: its sequence, SHA-256 and the experts drawn."""
    draw = uow.draws.get(draw_id)
    if draw is None:
        raise NotFound(f"draw {draw_id} is not known")
    if draw.state is not DrawState.DRAWN or draw.result_sequence is None:
        raise FailedPrecondition(f"draw {draw_id} is {draw.state}: the committee is seated "
                                 "from a drawn result")
    entry = uow.feed.get(draw.result_sequence)
    assert entry is not None
    body = json.loads(entry.body)["body"]
    return entry.sequence, entry.body_sha256, list(body["drawn"])


@dataclass(frozen=True)
class RecordedAct:
    """An act recorded already under the caller's request id, asking the same: the retry
    of a call whose answer was lost, answered from the record, not sent again."""

    tender: Tender
    #: The feed entry the act published (0 when none), as the first call answered.
    feed_sequence: int
    facts: TenderFacts


def _recorded(uow: TradingUnitOfWork, caller: Caller, tender: Tender, *, step: str,
              request_id: str, what: str, first: Callable[[TenderFacts], Asked],
              now: Asked) -> RecordedAct | None:
    """The act the calling system recorded as ``step`` under ``request_id`` when ``now``
    asks what it asked (``first`` reads that from its statement); ALREADY_EXISTS when it
    asked something else (``request_ids.answer_again``); None when the system recorded
    no such act (a request id is the system's own: the step's key is made of both)."""
    if not request_id:
        return None
    done = uow.tenders.step(tender.tender_no, act_key(step, caller.system, request_id))
    if done is None:
        return None
    facts = TenderFacts.read(json.loads(done.statement)["body"])
    return answer_again(RecordedAct(tender, int(done.feed_sequence), facts),
                        request_id=request_id, what=what, first=first(facts), now=now)


def prepare_committee(*, uow: TradingUnitOfWork, signer: ServiceSigner, caller: Caller,
                      tender_no: str, request_id: str, now: datetime
                      ) -> PreparedAct | RecordedAct:
    """The committee's statement: the experts of its draw's signed result, then the
    representatives; signed for the tender's workflow; nothing is written.

    The same system's same request again, once the committee is seated by it, is
    answered from the record (``RecordedAct``); any other seating of a seated committee
    is ALREADY_EXISTS.
    """
    with uow:
        official = require_official(uow.staff, caller, role=TRADING_OFFICER)
        known = uow.tenders.get(tender_no)
        if known is not None:
            again = _recorded(uow, caller, known, step="committee_seated",
                              request_id=request_id, what="committee seating",
                              first=lambda facts: Asked(facts.system, facts.tender_no),
                              now=Asked(caller.system, tender_no))
            if again is not None:
                return again
        tender = _tender_in_evaluation(uow, tender_no)
        committee = uow.evaluations.committee(tender_no)
        if committee is None:
            raise FailedPrecondition(f"tender {tender_no} has no committee draw: open one "
                                     "with DrawEvaluationCommittee")
        if committee.members:
            raise AlreadyExists(f"tender {tender_no} has its committee seated already")
        sequence, sha256, drawn = _drawn_result(uow, committee.draw_id)
    body = tender_statement_body(
        kind=StatementKind.COMMITTEE, tender_no=tender_no, official_id=official.id,
        department_code=official.department_code, roles=sorted(official.roles),
        system=caller.system, issued_at=now, request_id=request_id,
        draw_id=committee.draw_id, result_sequence=sequence, result_sha256=sha256,
        members=[*drawn, *committee.representatives])
    return PreparedAct(OfficialAct(as_statement(signer.sign(body))), tender)


def _member_voice(uow: TradingUnitOfWork, caller: Caller, committee: Committee,
                  member_id: str) -> None:
    """Refuse unless the calling system is the member's own: the expert's registered
    system, or for a representative a system that speaks for that official."""
    if member_id not in committee.members:
        raise PermissionDenied(f"{member_id} is not on the committee of tender "
                               f"{committee.tender_no}")
    if member_id in committee.representatives:
        official = uow.staff.get(member_id)
        if official is None or caller.official_id != member_id or not spoken_roles(
                caller, official.department_code, official.roles):
            raise PermissionDenied(f"system {caller.system} may not score for {member_id}")
        return
    if uow.evaluations.expert_system(member_id) != caller.system:
        raise PermissionDenied(f"system {caller.system} may not score for expert "
                               f"{member_id}: only the expert's own system may")


def _sheet_asked(system: str, member_id: str, bidder_id: str, compliant: bool,
                 technical: int, business: int) -> Asked:
    """A score sheet as ``request_ids.answer_again`` compares it: about a member's score
    of one bid, its scores."""
    return Asked(system, f"{member_id}/{bidder_id}",
                 {"compliant": compliant, "technical": technical, "business": business})


def prepare_score_sheet(*, uow: TradingUnitOfWork, signer: ServiceSigner, caller: Caller,
                        tender_no: str, request_id: str, member_id: str, bidder_id: str,
                        compliant: bool, technical: int, business: int,
                        now: datetime) -> PreparedAct | RecordedAct:
    """A member's score sheet for one valid bid, checked and signed; nothing is written.

    Refused: another system than the member's (PERMISSION_DENIED), a member not on the
    committee (PERMISSION_DENIED), scores out of range (INVALID_ARGUMENT), a bid that is
    not valid (FAILED_PRECONDITION), a second sheet for the same bid (ALREADY_EXISTS).
    The same system's same request again (the same member, bid and scores), once its
    sheet is recorded, is answered from the record (``RecordedAct``), even after the
    evaluation closed; the same request id with other scores is ALREADY_EXISTS.
    A system naming an official (a representative's) it may not speak for is refused
    before anything else is read, as on every RPC an official acts through.
    """
    with uow:
        if caller.official_id:
            acting_official(uow.staff, caller)
        tender = uow.tenders.get(tender_no)
        if tender is None:
            raise NotFound(f"tender {tender_no} is not known")
        committee = uow.evaluations.committee(tender_no)
        if committee is None or not committee.members:
            if tender.stage != TenderStage.EVALUATION:
                _tender_in_evaluation(uow, tender_no)
            raise FailedPrecondition(f"tender {tender_no} has no committee seated yet")
        _member_voice(uow, caller, committee, member_id)
        again = _recorded(
            uow, caller, tender, step="scored", request_id=request_id, what="score sheet",
            first=lambda facts: _sheet_asked(facts.system, facts.member_id, facts.bidder_id,
                                             facts.compliant, facts.technical, facts.business),
            now=_sheet_asked(caller.system, member_id, bidder_id, compliant, technical,
                             business))
        if again is not None:
            return again
        method, _ = evaluation_method(uow, tender_no)
        check_sheet(ScoreSheet(member_id, bidder_id, compliant, technical, business),
                    method=method)
        _tender_in_evaluation(uow, tender_no)
        bid = uow.tenders.bid(tender_no, bidder_id)
        if bid is None or bid.validity != "valid":
            raise FailedPrecondition(f"{bidder_id} has no valid bid in tender {tender_no}")
        if uow.evaluations.sheet(tender_no, member_id, bidder_id) is not None:
            raise AlreadyExists(f"{member_id} has scored {bidder_id} already: a score sheet "
                                "is not replaced")
    body = tender_statement_body(
        kind=StatementKind.SCORE_SHEET, tender_no=tender_no, official_id=member_id,
        department_code="committee", roles=[], system=caller.system, issued_at=now,
        request_id=request_id, member_id=member_id, bidder_id=bidder_id,
        compliant=compliant, technical=technical, business=business)
    return PreparedAct(OfficialAct(as_statement(signer.sign(body))), tender)


# ---- the recording side (the tender's RECORD_TENDER_STEP activity) -------------------------

def record_committee(unit: TradingUnitOfWork, keys: TrustedKeys, facts: TenderFacts, *,
                     at: datetime) -> dict[str, Any]:
    """Seat the committee once its statement is checked again against the draw's signed
    result in the feed; what the feed publishes of it."""
    committee = unit.evaluations.committee(facts.tender_no)
    if committee is None or committee.draw_id != facts.draw_id:
        raise FailedPrecondition(f"draw {facts.draw_id} is not the committee draw of "
                                 f"tender {facts.tender_no}")
    if committee.members:
        raise AlreadyExists(f"tender {facts.tender_no} has its committee seated already")
    entry = unit.feed.get(facts.result_sequence)
    if entry is None or entry.kind != "draw.drawn" or \
            hashlib.sha256(entry.body.encode()).hexdigest() != facts.result_sha256:
        raise PermissionDenied("the committee does not name its draw's published result")
    try:
        result = keys.verify(Signed.from_dict(json.loads(entry.body)), signer="trading")
    except BadSignature as error:
        raise PermissionDenied(f"the draw's result is not signed by trading: {error}") \
            from error
    if result.get("draw_id") != committee.draw_id or \
            [*result["drawn"], *committee.representatives] != list(facts.members):
        raise PermissionDenied("the committee is not its draw's result and the tenderer's "
                               "representatives")
    shape = committee_shape(size=len(facts.members),
                            representatives=len(committee.representatives))
    unit.evaluations.seat(facts.tender_no, facts.members, at=at)
    method, weights = evaluation_method(unit, facts.tender_no)
    return {"draw_id": committee.draw_id,
            "draw_result": {"sequence": entry.sequence, "body_sha256": entry.body_sha256},
            "members": list(facts.members), "experts": shape.experts,
            "representatives": list(committee.representatives), "method": str(method),
            "weights": weights.as_dict() if method == Method.COMPREHENSIVE else {}}


def _price(tender_no: str, bid: Envelope) -> int | None:
    """The price a valid bid's document states, opened again with its revealed key (a bid
    opened before its price was recorded at the opening)."""
    assert bid.revealed_key is not None
    try:
        document = open_bid(bid.ciphertext, bid.revealed_key, tender_number=tender_no,
                            bidder_id=bid.bidder_id, ciphertext_sha256=bid.ciphertext_sha256,
                            key_commitment=bid.key_commitment)
    except SealedBidError:
        return None
    return stated_price(document)


@dataclass(frozen=True)
class Ranked:
    evaluation: Evaluation
    #: Valid bids whose document states no price: not ranked.
    unpriced: tuple[str, ...]
    weights: Weights


def record_sheet(unit: TradingUnitOfWork, facts: TenderFacts, *, at: datetime,
                 statement: dict[str, Any]) -> Ranked | None:
    """Record a member's sheet (once); the ranking when it was the last one."""
    tender_no = facts.tender_no
    committee = unit.evaluations.committee(tender_no)
    if committee is None or not committee.members:
        raise FailedPrecondition(f"tender {tender_no} has no committee seated yet")
    if facts.member_id not in committee.members:
        raise PermissionDenied(f"{facts.member_id} is not on the committee of tender "
                               f"{tender_no}")
    method, weights = evaluation_method(unit, tender_no)
    check_sheet(ScoreSheet(facts.member_id, facts.bidder_id, facts.compliant,
                           facts.technical, facts.business), method=method)
    # The valid bids and the prices read at the opening: one query, no bid opened again.
    recorded = unit.tenders.valid_prices(tender_no)
    valid = list(recorded)
    if facts.bidder_id not in valid:
        raise FailedPrecondition(f"{facts.bidder_id} has no valid bid in tender {tender_no}")
    if unit.evaluations.sheet(tender_no, facts.member_id, facts.bidder_id) is not None:
        raise AlreadyExists(f"{facts.member_id} has scored {facts.bidder_id} already: a "
                            "score sheet is not replaced")
    unit.evaluations.add_sheet(tender_no, member_id=facts.member_id,
                               bidder_id=facts.bidder_id, compliant=facts.compliant,
                               technical=facts.technical, business=facts.business,
                               system=facts.system, at=at, statement=statement)
    if unit.evaluations.recorded_sheets(tender_no) < len(committee.members) * len(valid):
        return None
    prices: dict[str, int | None] = {bidder: price or None
                                     for bidder, price in recorded.items()}
    unread = {bidder for bidder, price in recorded.items() if price is None}
    if unread:
        # Opened before the prices were recorded at the opening: opened again here.
        for bid in unit.tenders.envelopes(tender_no):
            if bid.bidder_id in unread:
                prices[bid.bidder_id] = _price(tender_no, bid)
    priced = {bidder: price for bidder, price in prices.items() if price is not None}
    # Each sheet was checked as it was recorded (its member on the committee, its scores
    # in range, one per member and bid) and added to its bid's tally then (add_sheet): the
    # ranking reads a row per bid.
    summed, by_others = unit.evaluations.committee_tallies(tender_no, committee.members)
    if by_others:
        raise FailedPrecondition(f"tender {tender_no} has sheets from outside its committee")
    tallies = {bidder: given for bidder, given in summed.items() if bidder in priced}
    result = rank(method=method, prices=priced, tallies=tallies,
                  members=len(committee.members), weights=weights)
    return Ranked(result, tuple(sorted(b for b in valid if b not in priced)), weights)


def published_candidates(*, uow: TradingUnitOfWork, tender_no: str) -> list[str]:
    """The candidates the evaluation published for the tender (empty before)."""
    with uow:
        for step in reversed(uow.tenders.steps(tender_no)):
            if step.step == "scored" and step.feed_sequence:
                entry = uow.feed.get(step.feed_sequence)
                assert entry is not None
                return list(json.loads(entry.body)["body"].get("candidates", []))
    return []
