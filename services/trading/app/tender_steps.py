"""Trading's side of the tender workflow: each transition recorded by one activity.

Every function here is the body of one trading activity
(services/trading/activities.py). Each verifies the signed statement it is
given with the trading service's published keys (an act nobody signed, or
one for another tender, is refused: PERMISSION_DENIED), records the step
once (a retried activity finds its step and answers as the first time),
keeps the tender's stage and deadline (computed here from the signed
statements by workflows/tender_rules.py, not taken from the workflow), writes
the audit log and publishes to the feed what the public must see:
announcement, amendment, opening record (the commitments at the deadline),
failure, candidates, award and contract.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from kernel.audit import Actor
from kernel.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from kernel.signing import BadSignature, ServiceSigner, TrustedKeys
from services.trading.app import evaluation
from services.trading.app.request_ids import act_asked_again
from services.trading.db.repository import TradingUnitOfWork
from services.trading.domain.draws import utc_text
from services.trading.domain.evaluation import Method, price_in
from services.trading.domain.feed import FeedLink, NewFeedEntry
from services.trading.domain.model import act_key
from services.trading.domain.monitoring import (
    Alert,
    AlikeDocuments,
    alerts_on_award,
    alerts_on_opened,
    parsed_document,
)
from services.trading.domain.sealed_bids import SealedBidError, TenderOpening
from services.trading.domain.tenders import Envelope, Tender, TenderStage
from workflows import tender_rules as rules
from workflows.approval_contract import SignedStatement, content_digest, statement_json
from workflows.tender_contract import (
    BiddingClosed,
    ObjectionTarget,
    StatementKind,
    StepReceipt,
    TenderFacts,
    TenderStep,
    verified_facts,
)

UnitOfWorkFactory = Callable[[], TradingUnitOfWork]
TRADING_SYSTEM = "govhall-trading"


def _verified(keys: TrustedKeys, statement: SignedStatement, kind: StatementKind,
              tender_no: str) -> TenderFacts:
    try:
        facts = verified_facts(keys, statement, kind)
    except BadSignature as error:
        raise PermissionDenied(f"the {kind} is not one the trading service signed: {error}") \
            from error
    except TenderFacts.Malformed as error:
        raise InvalidArgument(str(error)) from error
    if facts.tender_no != tender_no:
        raise PermissionDenied(f"the statement is about tender {facts.tender_no}, "
                               f"not {tender_no}")
    return facts


def _tender(uow: TradingUnitOfWork, tender_no: str) -> Tender:
    tender = uow.tenders.get(tender_no, for_update=True)
    if tender is None:
        raise NotFound(f"tender {tender_no} is not known")
    return tender


def _publish(uow: TradingUnitOfWork, signer: ServiceSigner, kind: str, tender_no: str,
             body: dict[str, Any], *, at: datetime) -> int:
    """Append ``body`` to the feed, chained and signed with trading's key; its sequence."""
    def make(link: FeedLink) -> NewFeedEntry:
        chained = body | {"feed": link.as_dict(utc_text(link.published_at))}
        # The body is written in canonical form once, for its signature and the entry.
        _, written = signer.sign_canonical(chained)
        return NewFeedEntry.of_canonical(kind, f"tender/{tender_no}", written)

    return uow.feed.append(make, at=at)


def _receipt(tender: Tender, sequence: int, *, stage: TenderStage | None = None,
             deadline: datetime | None = None) -> StepReceipt:
    return StepReceipt(tender.tender_no, str(stage or tender.stage),
                       deadline or tender.bid_deadline, sequence)


def _actor(facts: TenderFacts) -> Actor:
    return Actor(facts.system, facts.official_id)


def open_tender(*, uow: UnitOfWorkFactory, keys: TrustedKeys, signer: ServiceSigner,
                step: TenderStep) -> StepReceipt:
    """The announcement recorded and published (once)."""
    facts = _verified(keys, step.statement, StatementKind.ANNOUNCEMENT, step.tender_no)
    with uow() as unit:
        tender = _tender(unit, step.tender_no)
        if unit.tenders.announcement(step.tender_no)["signature"] != step.statement.signature:
            raise PermissionDenied(f"the announcement is not the one tender {step.tender_no} "
                                   "was announced with")
        done = unit.tenders.step(step.tender_no, "announced")
        if done is not None:
            return _receipt(tender, done.feed_sequence)
        sequence = _publish(unit, signer, "tender.announced", step.tender_no, {
            "tender_no": step.tender_no, "project_no": facts.project_no,
            "category": facts.category, "entry_code": facts.entry_code,
            "tenderer_department": facts.tenderer_department,
            "bid_deadline": facts.bid_deadline, "documents_until": facts.documents_until,
            "objections_until": facts.objections_until,
            "decryption_window_seconds": facts.decryption_window_seconds,
            "evaluation_method": facts.evaluation_method, "weights": list(facts.weights),
            "announcement": statement_json(step.statement)}, at=step.at)
        unit.tenders.add_step(step.tender_no, "announced", step="announced", at=step.at,
                              feed_sequence=sequence, statement=statement_json(step.statement),
                              content="")
        unit.audit.append(actor=Actor(TRADING_SYSTEM), action="tender.opened",
                          subject=f"tender/{step.tender_no}", at=step.at,
                          details={"feed_sequence": sequence})
        unit.commit()
        return _receipt(tender, sequence)


_KINDS = {"amended": StatementKind.AMENDMENT, "objected": StatementKind.OBJECTION,
          "objection_answered": StatementKind.OBJECTION_ANSWER,
          "candidates_published": StatementKind.EVALUATION, "awarded": StatementKind.AWARD,
          "contracted": StatementKind.CONTRACT,
          "committee_seated": StatementKind.COMMITTEE, "scored": StatementKind.SCORE_SHEET}


def record_step(*, uow: UnitOfWorkFactory, keys: TrustedKeys, signer: ServiceSigner,
                step: TenderStep) -> StepReceipt:
    """One official's act recorded, the tender's state moved, published where public."""
    kind = _KINDS.get(step.step)
    if kind is None:
        raise InvalidArgument(f"{step.step!r} is not an official's act on a tender")
    facts = _verified(keys, step.statement, kind, step.tender_no)
    if (facts.content_sha256 or step.text) and \
            content_digest(text=step.text) != facts.content_sha256:
        raise InvalidArgument("the text is not the one trading signed")
    key = act_key(step.step, facts.system, facts.request_id or facts.issued_at)
    with uow() as unit:
        tender = _tender(unit, step.tender_no)
        done = unit.tenders.step(step.tender_no, key)
        if done is not None:
            # One act per key: the same request again is answered from the record; another
            # content under its request id (sent at once, so its own update) is refused,
            # never answered with the recorded act's receipt.
            act_asked_again(None, request_id=facts.request_id,
                            first=json.loads(done.statement)["body"], now=step.statement.body)
            receipt = _receipt(tender, done.feed_sequence)
            if kind == StatementKind.SCORE_SHEET and done.feed_sequence:
                # The sheet that completed the evaluation, retried: its candidates again.
                published = unit.feed.get(done.feed_sequence)
                assert published is not None
                receipt.candidates = list(
                    json.loads(published.body)["body"].get("candidates", []))
            return receipt
        if tender.stage in (TenderStage.CONTRACTED, TenderStage.FAILED):
            raise FailedPrecondition(f"tender {step.tender_no} is finished ({tender.stage})")
        sequence = 0
        deadline = tender.bid_deadline
        changes: dict[str, Any] = {}
        alerts: list[Alert] = []
        candidates: list[str] = []
        public: dict[str, Any] = {"tender_no": step.tender_no,
                                  "statement": statement_json(step.statement)}
        if kind == StatementKind.AMENDMENT:
            deadline = rules.deadline_after_amendment(deadline=deadline,
                                                      amended_at=facts.issued)
            changes["bid_deadline"] = deadline
            sequence = _publish(unit, signer, "tender.amended", step.tender_no, public | {
                "content": step.text, "bid_deadline": utc_text(deadline)}, at=step.at)
        elif kind == StatementKind.OBJECTION:
            changes["paused"] = True
        elif kind == StatementKind.OBJECTION_ANSWER:
            if step.objection is None:
                raise InvalidArgument("an answer comes with the objection it answers")
            objection = _verified(keys, step.objection, StatementKind.OBJECTION,
                                  step.tender_no)
            if objection.objection_id != facts.objection_id:
                raise FailedPrecondition(f"the answer is to {facts.objection_id}, not to "
                                         f"{objection.objection_id}")
            if objection.target == ObjectionTarget.DOCUMENTS:
                deadline = rules.deadline_after_pause(
                    deadline=deadline, paused_at=objection.issued,
                    resumed_at=max(facts.issued, objection.issued))
                changes["bid_deadline"] = deadline
            changes["paused"] = False
        elif kind == StatementKind.EVALUATION:
            valid = set(unit.tenders.valid_prices(step.tender_no))
            strangers = [c for c in facts.candidates if c not in valid]
            if strangers:
                raise FailedPrecondition(f"{', '.join(strangers)} has no valid bid")
            changes["stage"] = str(TenderStage.CANDIDATES)
            sequence = _publish(unit, signer, "tender.candidates", step.tender_no, public | {
                "candidates": list(facts.candidates),
                "award_from": utc_text(rules.earliest_award(step.at))}, at=step.at)
        elif kind == StatementKind.COMMITTEE:
            if tender.stage != TenderStage.EVALUATION:
                raise FailedPrecondition(f"tender {step.tender_no} is at {tender.stage}, "
                                         "not evaluation")
            seated = evaluation.record_committee(unit, keys, facts, at=step.at)
            sequence = _publish(unit, signer, "tender.committee", step.tender_no,
                                public | seated, at=step.at)
        elif kind == StatementKind.SCORE_SHEET:
            if tender.stage != TenderStage.EVALUATION:
                raise FailedPrecondition(f"tender {step.tender_no} is at {tender.stage}: "
                                         "its score sheets are closed")
            ranked = evaluation.record_sheet(unit, facts, at=step.at,
                                             statement=statement_json(step.statement))
            if ranked is not None:
                result = ranked.evaluation
                candidates = list(result.candidates)
                ranking: dict[str, Any] = {
                    "tender_no": step.tender_no, "method": str(result.method),
                    "ranking": [r.as_dict() for r in result.ranking],
                    "disqualified": list(result.disqualified),
                    "unpriced": list(ranked.unpriced)}
                if result.method == Method.COMPREHENSIVE:
                    ranking["weights"] = ranked.weights.as_dict()
                if candidates:
                    changes["stage"] = str(TenderStage.CANDIDATES)
                    sequence = _publish(unit, signer, "tender.candidates", step.tender_no,
                                        ranking | {"candidates": candidates,
                                                   "award_from": utc_text(
                                                       rules.earliest_award(step.at))},
                                        at=step.at)
                else:
                    changes["stage"] = str(TenderStage.FAILED)
                    sequence = _publish(unit, signer, "tender.failed", step.tender_no,
                                        ranking | {"reason": "no bid qualified in the "
                                                   "evaluation"}, at=step.at)
        elif kind == StatementKind.AWARD:
            changes |= {"stage": str(TenderStage.AWARDED), "winner": facts.winner}
            project = unit.projects.get(tender.project_no)
            alerts = alerts_on_award(winner=facts.winner, amount_fen=facts.amount_fen,
                                     estimate_fen=project.estimated_value_fen if project else 0)
            sequence = _publish(unit, signer, "tender.awarded", step.tender_no, public | {
                "winner": facts.winner, "amount_fen": facts.amount_fen,
                "contract_due": utc_text(rules.contract_due(step.at))}, at=step.at)
        elif kind == StatementKind.CONTRACT:
            changes["stage"] = str(TenderStage.CONTRACTED)
            sequence = _publish(unit, signer, "tender.contracted", step.tender_no, public | {
                "winner": facts.winner, "contract_no": facts.contract_no,
                "amount_fen": facts.amount_fen}, at=step.at)
        if changes:
            unit.tenders.save_state(step.tender_no, **changes)
        unit.tenders.add_step(step.tender_no, key, step=step.step, at=step.at,
                              feed_sequence=sequence, statement=statement_json(step.statement),
                              content=step.text, alerts=alerts)
        unit.audit.append(actor=_actor(facts), action=f"tender.{step.step}",
                          subject=f"tender/{step.tender_no}", at=step.at,
                          details={"request_id": facts.request_id, "feed_sequence": sequence,
                                   "bid_deadline": deadline.isoformat(),
                                   "objection_id": facts.objection_id,
                                   "candidates": list(facts.candidates),
                                   "winner": facts.winner, "amount_fen": facts.amount_fen,
                                   "member_id": facts.member_id,
                                   "bidder_id": facts.bidder_id,
                                   "members": list(facts.members)})
        unit.commit()
        stage = TenderStage(changes.get("stage", tender.stage))
        receipt = _receipt(tender, sequence, stage=stage, deadline=deadline)
        receipt.candidates = candidates
        return receipt


def close_bidding(*, uow: UnitOfWorkFactory, keys: TrustedKeys, signer: ServiceSigner,
                  step: TenderStep) -> BiddingClosed:
    """The deadline: the bids counted; 3 or more: their commitments published as the opening
    record; fewer: the failure published, nothing opened."""
    _verified(keys, step.statement, StatementKind.ANNOUNCEMENT, step.tender_no)
    with uow() as unit:
        tender = _tender(unit, step.tender_no)
        done = unit.tenders.step(step.tender_no, "deadline")
        if done is not None:
            return BiddingClosed(step.tender_no, tender.bids,
                                 tender.stage != TenderStage.FAILED, done.feed_sequence)
        if step.at < tender.bid_deadline or tender.paused:
            raise FailedPrecondition(f"tender {step.tender_no} takes bids until "
                                     f"{tender.bid_deadline.isoformat()}"
                                     + (" and is paused" if tender.paused else ""))
        # The commitments only: the envelopes are not needed to publish them.
        bids = unit.tenders.commitments(step.tender_no)
        opened = rules.opens(len(bids))
        if opened:
            sequence = _publish(unit, signer, "tender.opened", step.tender_no, {
                "tender_no": step.tender_no, "bid_deadline": utc_text(tender.bid_deadline),
                "bids": [{"bidder_id": bidder, "ciphertext_sha256": digest,
                          "key_commitment": commitment}
                         for bidder, digest, commitment in bids],
                "decryption_ends_at": utc_text(
                    step.at + _window(tender))}, at=step.at)
            stage = TenderStage.DECRYPTION
        else:
            sequence = _publish(unit, signer, "tender.failed", step.tender_no, {
                "tender_no": step.tender_no, "bid_deadline": utc_text(tender.bid_deadline),
                "bids": len(bids), "reason": f"fewer than {rules.MIN_BIDS} bids: nothing "
                                             "was opened"}, at=step.at)
            stage = TenderStage.FAILED
        unit.tenders.save_state(step.tender_no, stage=str(stage))
        unit.tenders.add_step(step.tender_no, "deadline", step="deadline", at=step.at,
                              feed_sequence=sequence, statement=statement_json(step.statement),
                              content="")
        unit.audit.append(actor=Actor(TRADING_SYSTEM),
                          action="tender.opened" if opened else "tender.failed",
                          subject=f"tender/{step.tender_no}", at=step.at,
                          details={"bids": len(bids), "feed_sequence": sequence})
        unit.commit()
        return BiddingClosed(step.tender_no, len(bids), opened, sequence)


def _window(tender: Tender) -> timedelta:
    return timedelta(seconds=tender.decryption_window_seconds)


def _validity(opening: TenderOpening, bid: Envelope) -> tuple[str, bytes | None]:
    """"valid" and the document when the revealed key opens the bid (govhall-bid/1), else
    why not and None."""
    if bid.revealed_key is None:
        return "unrevealed", None
    try:
        document = opening.open(bid.ciphertext, bid.revealed_key, bidder_id=bid.bidder_id,
                                ciphertext_sha256=bid.ciphertext_sha256,
                                key_commitment=bid.key_commitment)
    except SealedBidError as refused:
        return refused.reason, None
    return "valid", document


def close_decryption(*, uow: UnitOfWorkFactory, keys: TrustedKeys, signer: ServiceSigner,
                     step: TenderStep) -> StepReceipt:
    """The decryption window ended: each bid opened with its revealed key (an unrevealed or
    mismatching one is invalid), the outcome published, the tender to evaluation; with
    fewer than 3 valid bids the tender fails publicly instead (``tender.failed``).

    The bid documents are not kept or published here; each valid bid's stated price is
    kept on its row for the evaluation's ranking (which publishes it).
    """
    _verified(keys, step.statement, StatementKind.ANNOUNCEMENT, step.tender_no)
    with uow() as unit:
        tender = _tender(unit, step.tender_no)
        done = unit.tenders.step(step.tender_no, "decryption_closed")
        if done is not None:
            return _receipt(tender, done.feed_sequence)
        if tender.stage != TenderStage.DECRYPTION:
            raise FailedPrecondition(f"tender {step.tender_no} is at {tender.stage}, "
                                     "not decryption")
        opened = unit.tenders.step(step.tender_no, "deadline")
        assert opened is not None
        if step.at < opened.at + _window(tender):
            raise FailedPrecondition("the decryption window has not ended")
        outcome = []
        envelopes = unit.tenders.envelopes(step.tender_no)
        opening = TenderOpening(step.tender_no)

        def reopen(index: int) -> bytes:
            # The same envelope and key open to the same bytes (it opened before).
            document = _validity(opening, envelopes[index])[1]
            assert document is not None
            return document

        # The valid bids' documents, each let go once read: only the ones alike in length
        # and ends with another are held (and hashed if identical), for the identical-
        # documents alert; and their stated prices, as (bidder, price).
        documents = AlikeDocuments(reopen)
        stated: list[tuple[str, int | None]] = []
        validities: dict[str, str] = {}
        prices: dict[str, int] = {}
        invalid: list[str] = []
        for index, bid in enumerate(envelopes):
            bidder_id = bid.bidder_id
            validity, document = _validity(opening, bid)
            if document is not None:
                # Only digests and stated prices go on: the documents are not kept. The
                # price is kept for the ranking (0: none stated), which so opens no bid.
                # The document is parsed once for both readings of its price.
                parsed = parsed_document(document)
                documents.add(bidder_id, document, index)
                # One reading for the monitoring rules and the ranking (1 to MAX_PRICE_FEN).
                price = price_in(parsed)
                stated.append((bidder_id, price))
                prices[bidder_id] = price or 0
                outcome.append({"bidder_id": bidder_id, "valid": True, "reason": ""})
            else:
                invalid.append(bidder_id)
                outcome.append({"bidder_id": bidder_id, "valid": False, "reason": validity})
            validities[bidder_id] = validity
        # One batched write for every bid, not a round trip per bid.
        unit.tenders.set_validities(step.tender_no, validities, prices)
        valid = len(stated)
        sequence = _publish(unit, signer, "tender.decrypted", step.tender_no, {
            "tender_no": step.tender_no, "bids": outcome, "valid": valid}, at=step.at)
        stage = TenderStage.EVALUATION
        if not rules.evaluates(valid):
            # Fewer than 3 valid bids: the tender fails publicly, nothing is evaluated.
            stage = TenderStage.FAILED
            sequence = _publish(unit, signer, "tender.failed", step.tender_no, {
                "tender_no": step.tender_no, "bids": len(outcome), "valid": valid,
                "decrypted_sequence": sequence,
                "reason": f"fewer than {rules.MIN_BIDS} valid bids after the decryption "
                          "window: nothing is evaluated"}, at=step.at)
        unit.tenders.save_state(step.tender_no, stage=str(stage))
        unit.tenders.add_step(step.tender_no, "decryption_closed", step="decryption_closed",
                              at=step.at, feed_sequence=sequence,
                              statement=statement_json(step.statement), content="",
                              alerts=alerts_on_opened(
                                  documents, stated,
                                  estimate_fen=unit.projects.estimate(tender.project_no)),
                              details={"valid": valid, "bids": len(outcome)})
        unit.audit.append(actor=Actor(TRADING_SYSTEM),
                          action="tender.decryption_closed" if stage == TenderStage.EVALUATION
                          else "tender.failed",
                          subject=f"tender/{step.tender_no}", at=step.at,
                          details={"feed_sequence": sequence,
                                   "invalid": invalid})
        unit.commit()
        return _receipt(tender, sequence, stage=stage)


def mark_late(*, uow: UnitOfWorkFactory, keys: TrustedKeys, step: TenderStep) -> StepReceipt:
    """An objection's answer or the contract is late: recorded once, for the supervision
    desk (action ``tender.escalated``)."""
    if step.step == "objection_answer_late":
        facts = _verified(keys, step.statement, StatementKind.OBJECTION, step.tender_no)
        key, due = f"late/{facts.objection_id}", facts.instant("answer_due")
    elif step.step == "contract_late":
        _verified(keys, step.statement, StatementKind.ANNOUNCEMENT, step.tender_no)
        key, due = "late/contract", None
    else:
        raise InvalidArgument(f"{step.step!r} is not a lateness of a tender")
    with uow() as unit:
        tender = _tender(unit, step.tender_no)
        if unit.tenders.step(step.tender_no, key) is not None:
            return _receipt(tender, 0)
        if step.step == "contract_late":
            awarded = [s for s in unit.tenders.steps(step.tender_no) if s.step == "awarded"]
            if not awarded or not rules.contract_late(now=step.at, awarded_at=awarded[0].at):
                raise FailedPrecondition("the contract is not late")
        elif due is None or step.at < due:
            raise FailedPrecondition("the answer is not late")
        unit.tenders.add_step(step.tender_no, key, step=step.step, at=step.at,
                              feed_sequence=0, statement=statement_json(step.statement),
                              content="")
        unit.audit.append(actor=Actor(TRADING_SYSTEM), action="tender.escalated",
                          subject=f"tender/{step.tender_no}", at=step.at,
                          details={"late": step.step})
        unit.commit()
        return _receipt(tender, 0)
