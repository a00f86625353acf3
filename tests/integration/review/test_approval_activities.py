"""The review activities the approval workflow calls, on the service's real database.

Each is called as Temporal calls it (ActivityEnvironment), with statements
signed the way intake and review sign them, and again with the same input
as a retry would; statements nobody with authority signed are refused.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from govhall.review.v1 import review_pb2 as pb
from govhall.review.v1 import review_pb2_grpc
from kernel.signing import service_signer
from services.review.activities import ReviewActivities
from services.review.db import tables
from services.review.domain.deadlines import end_of_day
from tests.integration.review.conftest import sign_acceptance
from tests.support import SAMPLE_AUDIT_ENTRIES, ServiceUnderTest, as_official
from tests.unit.workflows.fakes import CLERK, LEADER, REVIEWER, Official, Signers
from workflows import approval_contract as c

K = c.StatementKind
OPERATOR = "ZWFWZX-004"
#: 11:00 on 14 October 2026 in China.
NOW = datetime(2026, 10, 14, 3, 0, tzinfo=UTC)
CASE = "AP-20260929-000001"


def china_noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 4, 0, tzinfo=UTC)


def hosted(review: ServiceUnderTest, signers: Signers, now: datetime = NOW) -> ReviewActivities:
    return ReviewActivities(review.running.engine, signers.keys, clock=lambda: now)


def environment(activity_id: str = "1") -> ActivityEnvironment:
    """An activity's environment; one id per call of the workflow, the same for its retries."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, activity_id=activity_id)
    return env


def rows(review: ServiceUnderTest, table: Any) -> list[dict[str, Any]]:
    with review.running.engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(select(table))]


def actions(review: ServiceUnderTest) -> list[str]:
    # After the sample load.
    return [row["action"] for row in rows(review, tables.audit_log)][SAMPLE_AUDIT_ENTRIES:]


def event_kinds(review: ServiceUnderTest, case_number: str = CASE) -> list[str]:
    with review.running.engine.connect() as connection:
        return [r.kind for r in connection.execute(
            select(tables.case_events).where(tables.case_events.c.case_number == case_number)
            .order_by(tables.case_events.c.sequence))]


def opening(signers: Signers, case_number: str = CASE, *, accepted_on: date = date(2026, 9, 29),
            promised: int = 5, legal: int = 20, department: str = "SCJGJ",
            at: datetime = NOW) -> c.DeadlinesRequest:
    acceptance = sign_acceptance(signers, case_number, accepted_at=china_noon(accepted_on),
                                 accepted_on=accepted_on, promised=promised, legal=legal,
                                 department_code=department,
                                 clerk_id=f"{department}-001")
    return c.DeadlinesRequest(acceptance, stage=c.Stage.REVIEW, reason="accepted", at=at,
                              sla_state=c.SlaState.ON_TIME)


async def open_case(review: ServiceUnderTest, signers: Signers,
                    request: c.DeadlinesRequest) -> c.Deadlines:
    deadlines: c.Deadlines = await environment("open").run(
        hosted(review, signers).open_case, request)
    return deadlines


def transition(signers: Signers, who: Official, stage: str, outcome: str, next_stage: str, *,
               case_number: str = CASE, due: datetime | None = None,
               opinion: str = "同意") -> c.Transition:
    decision = signers.decision(case_number, who, stage, outcome, opinion=opinion)
    facts = c.StatementFacts.read(decision.statement.body)
    taken = c.DecisionTaken(stage, outcome, who.official_id, who.on_behalf_of,
                            who.delegation_id, who.system, NOW, decision.statement,
                            decision.opinion, decision.legal_basis)
    assert facts.stage == stage
    roles = {c.Stage.SIGN: ("SCJGJ", "leader"), c.Stage.SEAL: ("ZWFWZX", "seal_custodian")}
    department, role = roles.get(c.Stage(next_stage), ("", ""))
    return c.Transition(case_number, taken, next_stage, next_department=department,
                        next_role=role, next_due_at=due if department else None,
                        item_code="012101000001000", sla_state=c.SlaState.ON_TIME)


async def refused(call: Any, argument: Any, activity_id: str = "x") -> ApplicationError:
    with pytest.raises(ApplicationError) as failure:
        await environment(activity_id).run(call, argument)
    assert failure.value.non_retryable
    return failure.value


async def test_deadlines_across_national_day_with_a_pause_and_an_extension(
        review: ServiceUnderTest, signers: Signers) -> None:
    plain = await open_case(review, signers, opening(signers))
    again = await open_case(review, signers, opening(signers))
    pauses = [signers.statement(K.PROCEDURE_START, CASE, REVIEWER, procedure="expert_review",
                                at=china_noon(date(2026, 10, 8))),
              signers.statement(K.PROCEDURE_END, CASE, REVIEWER, procedure="expert_review",
                                at=china_noon(date(2026, 10, 10)))]
    extension = signers.clock(K.EXTENSION, CASE, LEADER, days=10, reason="需现场核查")
    recompute = c.DeadlinesRequest(opening(signers).acceptance, pauses=pauses,
                                   extension=extension.statement,
                                   extension_reason=extension.reason, stage=c.Stage.REVIEW,
                                   reason="legal limit extended", at=NOW,
                                   sla_state=c.SlaState.ON_TIME, cause="extended")
    paused = await environment("recompute").run(hosted(review, signers).recompute_deadlines,
                                                recompute)
    running_case = "AP-20260929-000002"
    await open_case(review, signers, opening(signers, running_case))
    running = await environment("running").run(
        hosted(review, signers).recompute_deadlines, c.DeadlinesRequest(
            opening(signers, running_case).acceptance, pauses=[signers.statement(
                K.PROCEDURE_START, running_case, REVIEWER, procedure="appraisal",
                at=china_noon(date(2026, 10, 12)))], stage=c.Stage.REVIEW, at=NOW))
    # Review by the 9th (3 working days), signature by the make-up Saturday, seal the 12th.
    assert plain == again == c.Deadlines(
        end_of_day(date(2026, 10, 10)), end_of_day(date(2026, 10, 12)),
        end_of_day(date(2026, 11, 2)), 0,
        {"review": end_of_day(date(2026, 10, 9)), "sign": end_of_day(date(2026, 10, 10)),
         "seal": end_of_day(date(2026, 10, 12))})
    # The 9th and the make-up Saturday 10th stood still; the extension adds ten days.
    assert paused.promised_due_at == end_of_day(date(2026, 10, 14))
    assert paused.legal_due_at == end_of_day(date(2026, 11, 18))
    # Open since the 12th, "today" the 14th (China): the 13th and 14th stood still.
    assert running.promised_due_at == end_of_day(date(2026, 10, 14))
    progress = {r["case_number"]: r for r in rows(review, tables.case_progress)}
    assert (progress[CASE]["extension_days"], progress[CASE]["paused_for"]) == (10, "")
    assert progress[running_case]["paused_for"] == "appraisal"
    assert progress[CASE]["legal_due_at"] == paused.legal_due_at
    tasks = {r["case_number"]: r for r in rows(review, tables.tasks)}
    # The open review task follows its new due time.
    assert tasks[CASE]["due_at"] == paused.stage_due_at["review"]
    [extended] = rows(review, tables.decisions)
    assert extended["outcome"] == "extend_10"
    assert event_kinds(review) == ["chain.started", "deadlines.computed",
                                   "time_limit.extended"]
    # The extension is a decision that carries authority: its row names its audit entry,
    # which holds the row's digest (kernel.authority).
    [entry] = [e for e in rows(review, tables.audit_log) if e["action"] == "decision.recorded"]
    assert extended["audit_sequence"] == entry["sequence"]
    assert list(json.loads(entry["details"])["authority_rows"]) == [
        f"decisions/{extended['id']}"]


async def test_an_end_without_a_start_cannot_be_counted(
        review: ServiceUnderTest, signers: Signers) -> None:
    await open_case(review, signers, opening(signers))
    failure = await refused(hosted(review, signers).recompute_deadlines, c.DeadlinesRequest(
        opening(signers).acceptance, pauses=[signers.statement(
            K.PROCEDURE_END, CASE, REVIEWER, procedure="hearing", at=NOW)], at=NOW))
    assert failure.type == "InvalidArgument"
    assert "matches no start" in failure.message
    assert event_kinds(review) == ["chain.started", "deadlines.computed"]


async def test_a_year_without_schedule_is_flagged_then_known_once_loaded(
        review: ServiceUnderTest, signers: Signers) -> None:
    year_end = opening(signers, accepted_on=date(2026, 12, 28), at=NOW + timedelta(days=80))
    provisional = await open_case(review, signers, year_end)
    async with review.channel() as channel:
        loaded = await review_pb2_grpc.ReviewServiceStub(channel).LoadHolidaySchedule(
            pb.LoadHolidayScheduleRequest(year=2027, holidays=["2027-01-01"]),
            metadata=as_official(OPERATOR))
    known = await environment("recompute").run(
        hosted(review, signers).recompute_deadlines,
        dataclasses.replace(year_end, reason="holiday schedule 2027 loaded"))
    assert provisional.unknown_year == 2027
    assert provisional.promised_due_at == end_of_day(date(2027, 1, 4))
    assert loaded.schedule.year == 2027
    assert known.unknown_year == 0
    assert known.promised_due_at == end_of_day(date(2027, 1, 5))
    [progress] = rows(review, tables.case_progress)
    assert progress["unknown_year"] == 0


async def test_a_transition_recorded_twice_records_once(
        review: ServiceUnderTest, signers: Signers) -> None:
    deadlines = await open_case(review, signers, opening(signers))
    reviewed = transition(signers, REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE, c.Stage.SIGN,
                          due=deadlines.stage_due_at["sign"])
    record = hosted(review, signers).record_transition
    await environment("t1").run(record, reviewed)
    await environment("t1").run(record, reviewed)
    decisions = rows(review, tables.decisions)
    tasks = {r["stage"]: r for r in rows(review, tables.tasks)}
    assert [(d["stage"], d["outcome"], d["official_id"], d["opinion"]) for d in decisions] == [
        ("review", "approve", REVIEWER.official_id, "同意")]
    assert json.loads(decisions[0]["statement"])["signer"] == "review"
    assert (tasks["review"]["closed_by"], tasks["review"]["outcome"]) == (
        REVIEWER.official_id, "approve")
    assert tasks["sign"]["closed_at"] is None
    assert tasks["sign"]["due_at"] == deadlines.stage_due_at["sign"]
    assert actions(review) == ["case.opened", "decision.recorded"]
    assert event_kinds(review) == ["chain.started", "deadlines.computed", "review.decided"]
    [progress] = rows(review, tables.case_progress)
    assert progress["stage"] == "sign"
    # Ids and codes only in the audit log: the opinion stays out of it; the decision's row
    # is there only as a digest (kernel.authority).
    entry = rows(review, tables.audit_log)[-1]
    assert "同意" not in entry["details"]
    [(row, digest)] = json.loads(entry["details"])["authority_rows"].items()
    assert row == f"decisions/{decisions[0]['id']}"
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert decisions[0]["audit_sequence"] == entry["sequence"]


async def test_a_transition_out_of_order_or_altered_is_refused(
        review: ServiceUnderTest, signers: Signers) -> None:
    deadlines = await open_case(review, signers, opening(signers))
    record = hosted(review, signers).record_transition
    sealer = Official("ZWFWZX-001", "ZWFWZX", ("seal_custodian",))
    too_early = await refused(record, dataclasses.replace(transition(
        signers, sealer, c.Stage.SEAL, c.Outcome.SEAL, c.Stage.COMPLETED),
        sealed=signers.sealed(CASE, "SY-2026-000001", "approved")))
    genuine = transition(signers, REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE, c.Stage.SIGN,
                         due=deadlines.stage_due_at["sign"])
    other_opinion = await refused(record, dataclasses.replace(
        genuine, decision=dataclasses.replace(genuine.decision, opinion="不同意")))
    other_outcome = await refused(record, dataclasses.replace(
        genuine, decision=dataclasses.replace(genuine.decision, outcome="refuse")))
    assert too_early.type == "FailedPrecondition"
    assert (other_opinion.type, other_outcome.type) == ("InvalidArgument", "InvalidArgument")
    assert rows(review, tables.decisions) == []
    assert actions(review) == ["case.opened"]


async def test_a_statement_review_did_not_sign_is_refused_and_recorded(
        review: ServiceUnderTest, signers: Signers, tmp_path: Path) -> None:
    await open_case(review, signers, opening(signers))
    outsider = service_signer(tmp_path / "outsider", "review")
    record = hosted(review, signers).record_transition

    def signed_by(signer: Any) -> c.Transition:
        genuine = transition(signers, REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE,
                             c.Stage.SIGN, due=NOW + timedelta(days=3))
        forged = signers.decision(CASE, REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE,
                                  opinion="同意", signer=signer)
        return dataclasses.replace(genuine, decision=dataclasses.replace(
            genuine.decision, statement=forged.statement))

    unknown_key = await refused(record, signed_by(outsider))
    by_intake = await refused(record, signed_by(signers.intake))
    genuine = transition(signers, REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE, c.Stage.SIGN)
    raised = dataclasses.replace(genuine.decision.statement, body={
        **genuine.decision.statement.body, "roles": ["reviewer", "leader"]})
    altered = await refused(record, dataclasses.replace(
        genuine, decision=dataclasses.replace(genuine.decision, statement=raised)))
    # A decision review really signed, but about another case: taken for this one, it would
    # record a decision nobody made on this case.
    elsewhere = transition(signers, REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE, c.Stage.SIGN,
                           case_number="AP-20260929-000002")
    another_case = await refused(record, dataclasses.replace(genuine, decision=elsewhere.decision))
    # An acceptance must be intake's: one signed by review opens no case.
    intakes = opening(signers, "AP-20260929-000009")
    by_review = dataclasses.replace(intakes, acceptance=c.as_statement(
        signers.review.sign(intakes.acceptance.body)))
    acceptance = await refused(hosted(review, signers).open_case, by_review)
    for failure in (unknown_key, by_intake, altered, another_case, acceptance):
        assert failure.type == "PermissionDenied"
        assert "refused and recorded" in failure.message
    assert rows(review, tables.decisions) == []
    assert [r["case_number"] for r in rows(review, tables.case_progress)] == [CASE]
    violations = [r for r in rows(review, tables.audit_log)
                  if r["action"] == "violation.refused_statement"]
    assert [(v["subject"], json.loads(v["details"])["what"]) for v in violations] == [
        (f"case/{CASE}", "decision"), (f"case/{CASE}", "decision"),
        (f"case/{CASE}", "decision"), (f"case/{CASE}", "decision"),
        ("case/AP-20260929-000009", "acceptance")]
    reasons = [json.loads(v["details"])["reason"] for v in violations]
    assert "no published key" in reasons[0]
    assert "signed by 'intake', not by 'review'" in reasons[1]
    assert "does not hold" in reasons[2]
    assert reasons[3] == "the statement is about case AP-20260929-000002"
    assert event_kinds(review) == ["chain.started", "deadlines.computed"]


async def test_mark_sla_keeps_each_change_and_opens_each_escalation_once(
        review: ServiceUnderTest, signers: Signers) -> None:
    deadlines = await open_case(review, signers, opening(signers))
    mark = hosted(review, signers).mark_sla
    warning = c.SlaMark(CASE, "SCJGJ", c.Stage.REVIEW, c.SlaState.WARNING, NOW)
    breach = c.SlaMark(CASE, "SCJGJ", c.Stage.REVIEW, c.SlaState.BREACHED, NOW,
                       ["promised_breach"], deadlines.promised_due_at, deadlines.legal_due_at)
    await environment("m1").run(mark, warning)
    await environment("m1").run(mark, warning)
    await environment("m2").run(mark, breach)
    await environment("m2").run(mark, breach)  # a retry
    await environment("m3").run(mark, breach)  # a later mark asking again
    escalations_after_promised = rows(review, tables.escalations)
    await environment("m4").run(mark, dataclasses.replace(breach, escalations=["legal_breach"]))
    unknown = await refused(mark, dataclasses.replace(breach, escalations=["late"]))
    escalations = rows(review, tables.escalations)
    [progress] = rows(review, tables.case_progress)
    assert [(e["case_number"], e["kind"], e["due_at"]) for e in escalations_after_promised] == [
        (CASE, "promised_breach", deadlines.promised_due_at)]
    assert [e["kind"] for e in escalations] == ["promised_breach", "legal_breach"]
    assert [e["closed_at"] for e in escalations] == [None, None]
    assert unknown.type == "InvalidArgument"
    assert progress["sla_state"] == "breached"
    assert event_kinds(review) == ["chain.started", "deadlines.computed", "sla.warning",
                                   "escalated", "sla.breached", "escalated"]
    assert actions(review) == ["case.opened", "escalation.opened", "escalation.opened"]


async def test_a_special_procedure_mark_pauses_the_case_on_its_signed_start(
        review: ServiceUnderTest, signers: Signers) -> None:
    await open_case(review, signers, opening(signers))
    start = signers.statement(K.PROCEDURE_START, CASE, REVIEWER, procedure="expert_review",
                              at=NOW)
    pause = c.SlaMark(CASE, "SCJGJ", c.Stage.REVIEW, c.SlaState.PAUSED, NOW, statement=start)
    await environment("p").run(hosted(review, signers).mark_sla, pause)
    forged = dataclasses.replace(pause, statement=signers.statement(
        K.PROCEDURE_START, CASE, REVIEWER, procedure="expert_review", at=NOW,
        signer=signers.intake))
    failure = await refused(hosted(review, signers).mark_sla, forged)
    [progress] = rows(review, tables.case_progress)
    assert (progress["sla_state"], progress["paused_for"]) == ("paused", "expert_review")
    assert failure.type == "PermissionDenied"
    assert event_kinds(review)[-1] == "clock.paused"
    assert actions(review) == ["case.opened", "case.special_procedure_started",
                               "violation.refused_statement"]


async def test_a_withdrawal_closes_the_task_and_escalations_once(
        review: ServiceUnderTest, signers: Signers) -> None:
    deadlines = await open_case(review, signers, opening(signers))
    await environment("m").run(hosted(review, signers).mark_sla, c.SlaMark(
        CASE, "SCJGJ", c.Stage.REVIEW, c.SlaState.BREACHED, NOW, ["promised_breach"],
        deadlines.promised_due_at, deadlines.legal_due_at))
    close = hosted(review, signers).close_case
    by_review = c.CaseClosing(CASE, c.Stage.REVIEW, "withdrawn", NOW, signers.statement(
        K.WITHDRAWAL, CASE, CLERK, signer=signers.review))
    forged = await refused(close, by_review)
    still_open = [t["closed_at"] for t in rows(review, tables.tasks)]
    withdrawal = c.CaseClosing(CASE, c.Stage.REVIEW, "withdrawn", NOW,
                               signers.withdrawal(CASE).statement)
    await environment("w").run(close, withdrawal)
    await environment("w").run(close, withdrawal)
    [task] = rows(review, tables.tasks)
    [escalation] = rows(review, tables.escalations)
    [progress] = rows(review, tables.case_progress)
    assert forged.type == "PermissionDenied"
    assert still_open == [None]
    assert (task["closed_by"], task["outcome"], task["closed_at"]) == (
        CLERK.official_id, "withdrawn", NOW)
    assert escalation["closed_at"] == NOW
    assert (progress["stage"], progress["outcome"]) == ("withdrawn", "withdrawn")
    assert actions(review).count("case.withdrawn") == 1
    assert event_kinds(review)[-1] == "withdrawn"
    assert event_kinds(review).count("withdrawn") == 1


SEALER = Official("ZWFWZX-001", "ZWFWZX", ("seal_custodian",))


async def _reviewed_and_signed(review: ServiceUnderTest, signers: Signers) -> ReviewActivities:
    deadlines = await open_case(review, signers, opening(signers))
    record = hosted(review, signers)
    await environment("t1").run(record.record_transition, transition(
        signers, REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE, c.Stage.SIGN,
        due=deadlines.stage_due_at["sign"]))
    await environment("t2").run(record.record_transition, transition(
        signers, LEADER, c.Stage.SIGN, c.Outcome.APPROVE, c.Stage.SEAL,
        due=deadlines.stage_due_at["seal"]))
    return record


async def test_a_case_is_completed_only_on_intakes_signed_seal(
        review: ServiceUnderTest, signers: Signers, tmp_path: Path) -> None:
    record = await _reviewed_and_signed(review, signers)
    sealing = dataclasses.replace(transition(
        signers, SEALER, c.Stage.SEAL, c.Outcome.SEAL, c.Stage.COMPLETED),
        certificate_number="SY-2026-999999", outcome="approved")
    unsigned = await refused(record.record_transition, sealing)
    forger = Signers(tmp_path / "forger")
    forged = await refused(record.record_transition, dataclasses.replace(
        sealing, sealed=forger.sealed(CASE, "SY-2026-999999", "approved")))
    other_case = await refused(record.record_transition, dataclasses.replace(
        sealing, sealed=signers.sealed("AP-20260929-000009", "SY-2026-000001", "approved")))
    assert (unsigned.type, forged.type, other_case.type) == ("PermissionDenied",) * 3
    assert [r["stage"] for r in rows(review, tables.case_progress)] == ["seal"]
    # The genuine receipt decides what is recorded, not the transition's plain fields.
    await environment("t3").run(record.record_transition, dataclasses.replace(
        sealing, sealed=signers.sealed(CASE, "SY-2026-000007", "refused")))
    [progress] = rows(review, tables.case_progress)
    assert (progress["stage"], progress["certificate_number"], progress["outcome"]) == (
        "completed", "SY-2026-000007", "refused")
    violations = [a for a in actions(review) if a.startswith("violation.")]
    assert len(violations) == 3


async def test_a_second_decision_for_a_decided_stage_is_refused_and_recorded(
        review: ServiceUnderTest, signers: Signers) -> None:
    """As after someone rewinds the case's workflow in Temporal: the stage was decided."""
    record = await _reviewed_and_signed(review, signers)
    other_leader = Official("SCJGJ-007", "SCJGJ", ("leader",))
    second = await refused(record.record_transition, transition(
        signers, other_leader, c.Stage.SIGN, c.Outcome.REFUSE, c.Stage.SEAL))
    assert second.type == "PermissionDenied"
    signs = [d for d in rows(review, tables.decisions) if d["stage"] == "sign"]
    assert [(d["official_id"], d["outcome"]) for d in signs] == [("SCJGJ-006", "approve")]
    assert actions(review)[-1] == "violation.refused_statement"


async def test_the_next_task_follows_reviews_record_not_the_request(
        review: ServiceUnderTest, signers: Signers) -> None:
    deadlines = await open_case(review, signers, opening(signers))
    misleading = dataclasses.replace(
        transition(signers, REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE, c.Stage.SIGN),
        next_department="ZJJ", next_role="reviewer", next_due_at=NOW + timedelta(days=400))
    await environment("t1").run(hosted(review, signers).record_transition, misleading)
    tasks = {r["stage"]: r for r in rows(review, tables.tasks)}
    assert (tasks["sign"]["department_code"], tasks["sign"]["role"]) == ("SCJGJ", "leader")
    assert tasks["sign"]["due_at"] == deadlines.stage_due_at["sign"]


async def test_a_replayed_older_request_cannot_take_the_extension_back(
        review: ServiceUnderTest, signers: Signers) -> None:
    await open_case(review, signers, opening(signers))
    extension = signers.clock(K.EXTENSION, CASE, LEADER, days=10, reason="需现场核查")
    extended = await environment("e").run(
        hosted(review, signers).recompute_deadlines, c.DeadlinesRequest(
            opening(signers).acceptance, extension=extension.statement,
            extension_reason=extension.reason, stage=c.Stage.REVIEW, at=NOW,
            cause="extended"))
    replayed = await environment("r").run(
        hosted(review, signers).recompute_deadlines,
        dataclasses.replace(opening(signers), stage=c.Stage.REVIEW))
    assert replayed.legal_due_at == extended.legal_due_at
    [progress] = rows(review, tables.case_progress)
    assert progress["extension_days"] == 10


async def test_the_timeline_reads_the_signed_acts_never_the_requests_words(
        review: ServiceUnderTest, signers: Signers) -> None:
    await open_case(review, signers, opening(signers))
    start = signers.statement(K.PROCEDURE_START, CASE, REVIEWER, procedure="expert_review",
                              at=china_noon(date(2026, 10, 8)))
    # A recompute signal may say anything; the clock was not resumed by anyone.
    await environment("s").run(hosted(review, signers).recompute_deadlines, c.DeadlinesRequest(
        opening(signers).acceptance, pauses=[start], stage=c.Stage.REVIEW, at=NOW,
        reason="special procedure ended\nforged line", cause="recomputed"))
    assert event_kinds(review)[-1] == "deadlines.computed"
    assert "case.special_procedure_ended" not in actions(review)
    [event] = [e for e in rows(review, tables.case_events) if e["kind"] == "deadlines.computed"
               and "forged" in e["details"]]
    assert "\n" not in json.loads(event["details"])["reason"]
    end = signers.statement(K.PROCEDURE_END, CASE, REVIEWER, procedure="expert_review",
                            at=china_noon(date(2026, 10, 10)))
    ended = c.DeadlinesRequest(opening(signers).acceptance, pauses=[start, end],
                               stage=c.Stage.REVIEW, at=NOW, cause="procedure_ended")
    await environment("e1").run(hosted(review, signers).recompute_deadlines, ended)
    await environment("e2").run(hosted(review, signers).recompute_deadlines, ended)
    assert actions(review).count("case.special_procedure_ended") == 1
