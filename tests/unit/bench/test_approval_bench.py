"""The approval benchmark's own arithmetic and shapes: nothing here measures speed.

The figures, ratios, percentiles and tables are checked on made-up runs; the
CPU accounting on made-up /proc lines; the shapes of the two baselines and
of govhall's real workflow are counted from real histories on the
time-skipping test server.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench import cpu
from bench.approval import (
    GOVHALL,
    SYSTEMS,
    baseline_case,
    govhall_open,
    parse,
    report,
    round_order,
    run_cases,
    timed,
)
from bench.baseline import (
    ACTIVITIES,
    ACTIVITY_QUEUE,
    EXPECTED,
    MINIMAL,
    SAME_SHAPE,
    WORKFLOW_QUEUE,
    WORKFLOWS,
)
from bench.figures import (
    LATENCY_PASS,
    RunFigures,
    call_figures,
    call_table,
    cpu_table,
    describe_failure,
    failure_report,
    ratio,
    round_ratios,
    table,
    verdict,
)
from bench.shape import Shape, case_shape, mismatch, shape_of, unexpected
from bench.suite import runner_environment
from tests.unit.workflows.fakes import LEADER, REVIEWER, SEALER, Center, Signers
from workflows import approval_contract as c
from workflows.approval import ApprovalWorkflow


def _figures(system: str, round_number: int, latencies: list[float], wall: float,
             failures: int = 0, concurrency: int = 20) -> RunFigures:
    figures = RunFigures(system, round_number, concurrency)
    for seconds in latencies:
        figures.record(seconds)
    for _ in range(failures):
        figures.fail(RuntimeError("the case did not seal"))
    figures.wall_seconds = wall
    return figures


# ---- figures ---------------------------------------------------------------------------------

def test_throughput_counts_only_the_cases_that_went_through() -> None:
    figures = _figures("govhall", 1, [0.1] * 8, wall=4.0, failures=2)
    assert figures.cases == 10
    assert figures.failed == 2
    assert figures.throughput == pytest.approx(2.0)


def test_percentiles_come_from_the_recorded_latencies_in_milliseconds() -> None:
    figures = _figures("govhall", 1, [i / 1000 for i in range(1, 101)], wall=1.0)
    assert figures.percentile_ms(50) == pytest.approx(50.0, rel=0.01)
    assert figures.percentile_ms(99) == pytest.approx(99.0, rel=0.01)


def test_a_run_without_successes_has_no_percentile() -> None:
    assert math.isnan(_figures("govhall", 1, [], wall=1.0, failures=3).percentile_ms(50))


def test_the_ratio_is_a_system_over_a_baseline_and_zero_without_a_baseline() -> None:
    govhall = _figures("govhall", 1, [0.1] * 7, wall=1.0)
    baseline = _figures("same-shape", 1, [0.1] * 10, wall=1.0)
    assert ratio(govhall, baseline) == pytest.approx(0.7)
    assert ratio(govhall, _figures("same-shape", 1, [], wall=1.0)) == 0.0


def test_round_ratios_pair_each_round_and_leave_the_latency_pass_out() -> None:
    runs = [_figures("govhall", LATENCY_PASS, [0.1] * 1, wall=1.0, concurrency=1),
            _figures("minimal", LATENCY_PASS, [0.1] * 100, wall=1.0, concurrency=1),
            _figures("minimal", 2, [0.1] * 20, wall=1.0),
            _figures("govhall", 2, [0.1] * 5, wall=1.0),
            _figures("govhall", 1, [0.1] * 6, wall=1.0),
            _figures("minimal", 1, [0.1] * 10, wall=1.0)]
    assert round_ratios(runs, "govhall", "minimal") == pytest.approx([0.6, 0.25])
    assert round_ratios(runs, "govhall", "same-shape") == []


def test_an_aim_is_met_at_least_or_at_most_and_never_by_nan() -> None:
    assert verdict(0.85, 0.85) == "met"
    assert verdict(0.84, 0.85) == "NOT met"
    assert verdict(250.0, 250.0, at_most=True) == "met"
    assert verdict(251.0, 250.0, at_most=True) == "NOT met"
    assert verdict(float("nan"), 0.5) == "NOT met"
    assert verdict(float("nan"), 250.0, at_most=True) == "NOT met"


def test_the_table_has_a_line_per_run_and_names_the_latency_pass() -> None:
    lines = table([_figures("govhall", 1, [0.25] * 4, wall=2.0, failures=1),
                   _figures("minimal", LATENCY_PASS, [0.05] * 2, wall=0.1,
                            concurrency=1)]).splitlines()
    assert lines[0].split() == ["round", "system", "conc", "cases", "failures", "wall", "s",
                                "cases/s", "p50", "ms", "p99", "ms"]
    assert lines[1].split()[:7] == ["1", "govhall", "20", "5", "1", "2.00", "2.00"]
    assert lines[2].split()[:3] == ["c1", "minimal", "1"]


def test_call_latencies_are_merged_over_rounds_per_system_concurrency_and_call() -> None:
    first, second = RunFigures("govhall", 1, 20), RunFigures("govhall", 2, 20)
    alone = RunFigures("govhall", LATENCY_PASS, 1)
    for milliseconds in range(1, 51):
        first.record_call("DecideCase sign", milliseconds / 1000)
        second.record_call("DecideCase sign", (milliseconds + 50) / 1000)
    alone.record_call("DecideCase sign", 0.007)
    first.record_call("SubmitApplication", 0.3)
    merged = {(f.concurrency, f.call): f for f in call_figures([first, second, alone])}
    sign = merged[(20, "DecideCase sign")]
    assert sign.count == 100
    assert sign.p50_ms == pytest.approx(50.0, rel=0.01)
    assert sign.p99_ms == pytest.approx(99.0, rel=0.01)
    assert merged[(1, "DecideCase sign")].count == 1
    assert merged[(1, "DecideCase sign")].p99_ms == pytest.approx(7.0, rel=0.01)
    assert merged[(20, "SubmitApplication")].count == 1
    row = call_table([sign]).splitlines()[1].split()
    assert row == ["20", "govhall", "DecideCase", "sign", "100", "50.0", "99.0"]


def test_failures_are_grouped_and_shown_with_unfinished_workflows() -> None:
    figures = _figures("govhall", 2, [0.1], wall=1.0, failures=3)
    figures.unfinished["WorkflowFailureError: stuck"] += 2
    shown = failure_report([figures])
    assert "round 2 govhall: 3 failed cases" in shown
    assert "3 × RuntimeError: the case did not seal" in shown
    assert "round 2 govhall: 2 workflows of cases that went through did not complete" in shown
    assert "2 × WorkflowFailureError: stuck" in shown
    assert failure_report([_figures("minimal", 1, [0.1], wall=1.0)]) == ""


def test_a_failure_names_its_cause() -> None:
    try:
        try:
            raise TimeoutError("no answer")
        except TimeoutError as inner:
            raise RuntimeError("decision lost") from inner
    except RuntimeError as error:
        described = describe_failure(error)
    assert described == ("RuntimeError: decision lost (caused by TimeoutError: no answer)")


# ---- the report ------------------------------------------------------------------------------

def _arguments(repeat: int) -> argparse.Namespace:
    return parse(["--repeat", str(repeat)])


def _round(number: int, govhall: int, same_shape: int, minimal: int) -> list[RunFigures]:
    return [_figures("govhall", number, [0.1] * govhall, wall=1.0),
            _figures("same-shape", number, [0.1] * same_shape, wall=1.0),
            _figures("minimal", number, [0.1] * minimal, wall=1.0)]


def test_one_round_prints_both_ratios_against_their_aims() -> None:
    printed = report(_round(1, govhall=9, same_shape=10, minimal=20), _arguments(1).repeat)
    assert "round 1 ratios: govhall / same-shape 0.90, govhall / minimal 0.45" in printed
    assert "median ratio govhall / same-shape (throughput): 0.90; aim >= 0.85: met" in printed
    assert "median ratio govhall / minimal (throughput): 0.45; aim >= 0.50: NOT met" in printed


def test_several_rounds_print_each_round_and_the_medians() -> None:
    runs = [*_round(1, 5, 10, 10), *_round(2, 9, 10, 12), *_round(3, 6, 10, 30)]
    printed = report(runs, 3)
    assert "round 2 ratios: govhall / same-shape 0.90, govhall / minimal 0.75" in printed
    assert "median over 3 rounds, govhall: 6.00 cases/s" in printed
    assert "median over 3 rounds, minimal: 12.00 cases/s" in printed
    assert "median ratio govhall / same-shape (throughput): 0.60; aim >= 0.85: NOT met" in printed
    assert "median ratio govhall / minimal (throughput): 0.50; aim >= 0.50: met" in printed


def test_the_decision_aim_reads_the_worst_decision_at_concurrency_one() -> None:
    alone = _figures("govhall", LATENCY_PASS, [0.5], wall=0.5, concurrency=1)
    for stage, milliseconds in (("review", 80), ("sign", 90), ("seal", 260)):
        alone.record_call(f"DecideCase {stage}", milliseconds / 1000)
    alone.record_call("SubmitApplication", 0.9)  # not a decision: not held to the aim
    busy = _round(1, 9, 10, 20)
    busy[0].record_call("DecideCase review", 0.01)  # at concurrency 20: not held to it either
    printed = report([alone, *busy], 1)
    # HDR histograms keep 3 significant digits: 260 ms reads back as 260.1.
    assert ("aim: a decision's p99 <= 250 ms at concurrency 1: NOT met "
            "(worst: DecideCase seal p99 260.1 ms)") in printed
    alone.calls.pop("DecideCase seal")
    assert ("aim: a decision's p99 <= 250 ms at concurrency 1: met "
            "(worst: DecideCase sign p99 90.0 ms)") in report([alone, *busy], 1)
    assert "at concurrency 1: not measured" in report(busy, 1)


def test_the_report_gives_activities_and_events_per_case() -> None:
    shapes = {"govhall": Shape(5, 1, 3, 1, 8, 12, 70), "minimal": Shape(4, 3, 3, 0, 0, 8, 40)}
    printed = report(_round(1, 9, 10, 20), 1, shapes)
    assert "  govhall: 5 activities, 3 updates, 70 history events" in printed
    assert "  minimal: 4 activities, 3 updates, 40 history events" in printed


def test_a_govhall_case_is_open_once_its_status_has_deadlines() -> None:
    assert govhall_open({"stage": "review", "deadlines": {"promised_due_at": "2026-12-08"}})
    assert not govhall_open({"stage": "review", "deadlines": None})
    assert not govhall_open(None)


def test_rounds_alternate_the_order_of_the_three_systems() -> None:
    assert round_order(1) == ("govhall", "same-shape", "minimal")
    assert round_order(2) == ("minimal", "same-shape", "govhall")
    assert round_order(3) == round_order(1)
    assert set(SYSTEMS) == {GOVHALL, SAME_SHAPE, MINIMAL}


def test_the_arguments_refuse_zero_cases_and_keep_the_options() -> None:
    with pytest.raises(SystemExit):
        parse(["--cases", "0"])
    args = parse(["--cases", "7", "--concurrency", "3", "--repeat", "2", "--warmup", "0",
                  "--latency-cases", "4", "--case-timeout", "9", "--keep-var"])
    assert (args.cases, args.concurrency, args.repeat, args.warmup, args.latency_cases,
            args.case_timeout, args.keep_var) == (7, 3, 2, 0, 4, 9.0, True)


# ---- running cases ---------------------------------------------------------------------------

async def test_run_cases_keeps_to_the_concurrency_counts_every_case_and_drains() -> None:
    in_flight = 0
    most = 0
    calls = 0
    drained: list[str] = []

    async def one_case(figures: RunFigures) -> str:
        nonlocal in_flight, most, calls
        calls += 1
        mine = calls
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0)
        in_flight -= 1
        if mine % 5 == 0:
            raise RuntimeError("refused")
        return f"case/{mine}"

    async def drain(workflow_id: str) -> None:
        drained.append(workflow_id)
        if workflow_id == "case/7":
            raise RuntimeError("the workflow failed")

    figures = await run_cases("minimal", one_case, cases=20, concurrency=3, round_number=1,
                              case_timeout=5.0, drain=drain)
    assert most == 3
    assert (figures.cases, figures.failed, figures.succeeded, figures.concurrency) == (
        20, 4, 16, 3)
    # Only the cases that went through are drained; one whose workflow fails is unfinished.
    assert sorted(drained) == sorted(f"case/{n}" for n in range(1, 21) if n % 5)
    assert figures.unfinished == {"RuntimeError: the workflow failed": 1}


async def test_timed_records_a_call_that_answered_and_not_one_that_failed() -> None:
    figures = RunFigures("govhall", 1)

    async def answered() -> str:
        return "AP-1"

    async def refused() -> str:
        raise RuntimeError("refused")

    assert await timed(figures, "SubmitApplication", answered()) == "AP-1"
    with pytest.raises(RuntimeError):
        await timed(figures, "DecideCase review", refused())
    assert list(figures.calls) == ["SubmitApplication"]
    assert figures.calls["SubmitApplication"].get_total_count() == 1


# ---- CPU ---------------------------------------------------------------------------------------

def test_process_seconds_read_user_and_system_time_after_the_command_name() -> None:
    line = "42 (python -m x) S 1 42 42 0 -1 4194304 0 0 0 0 250 50 0 0 20 0 1 0"
    assert cpu.process_seconds(line, 100) == pytest.approx(3.0)


def test_machine_seconds_leave_idle_and_iowait_out_of_busy() -> None:
    busy, total = cpu.machine_seconds("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n", 100)
    assert busy == pytest.approx(1.5)
    assert total == pytest.approx(10.0)


def test_processes_are_named_by_what_they_run() -> None:
    assert cpu.role_of("/x/temporal server start-dev --ip 127.0.0.1") == "temporal"
    assert cpu.role_of("python -m services.review.main serve") == "review"
    assert cpu.role_of("python -m workflows.worker") == "worker"
    assert cpu.role_of("sleep 1") == "other"


def test_cpu_used_is_the_difference_and_the_table_is_per_case() -> None:
    before = cpu.CpuSample({"temporal": 1.0, "bench": 0.5}, machine_busy=10.0,
                           machine_total=40.0)
    after = cpu.CpuSample({"temporal": 5.0, "bench": 1.5, "trading": 0.2},
                          machine_busy=20.0, machine_total=60.0)
    figures = _figures("govhall", 1, [0.1] * 10, wall=10.0)
    figures.cpu = cpu.used(before, after)
    assert figures.cpu.suite == pytest.approx(5.2)
    row = cpu_table([figures]).splitlines()[-1].split()
    # temporal, intake, review, worker, bench, rest, suite ms per case; machine busy; not ours
    assert row == ["1", "govhall", "400", "0", "0", "0", "100", "20", "520", "50%", "24%"]


def test_the_environment_of_the_runner_has_only_the_suites_own_settings(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GOVHALL_INTAKE_DATABASE_URL", "postgresql://elsewhere/intake")
    ports = {"temporal": 1, "ui": 2, "http": 3, "metrics": 4, "codec": 9, "intake": 5,
             "review": 6, "trading": 7, "complaints": 8}
    environment = runner_environment(tmp_path, ports)
    assert "GOVHALL_INTAKE_DATABASE_URL" not in environment
    assert environment["GOVHALL_RUNNER_VAR_DIR"] == str(tmp_path)
    assert environment["GOVHALL_RUNNER_TEMPORAL_UI_PORT"] == "2"
    assert environment["GOVHALL_REVIEW_PORT"] == "6"
    assert environment["GOVHALL_RUNNER_CODEC_PORT"] == "9"


# ---- shapes ------------------------------------------------------------------------------------

def _event(kind: EventType.ValueType) -> HistoryEvent:
    return HistoryEvent(event_type=kind)


E = EventType


def test_a_shape_counts_activities_updates_and_the_rest_from_the_history() -> None:
    events = [_event(E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED),
              *[_event(E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)] * 5,
              *[_event(E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)] * 3,
              *[_event(E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED)] * 3,
              _event(E.EVENT_TYPE_TIMER_STARTED),
              *[_event(E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)] * 2,
              *[_event(E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)] * 7]
    shape = shape_of(events, activities_in_handlers=1)
    assert shape == Shape(activities=5, activities_in_handlers=1, updates=3, timers=1,
                          search_attribute_upserts=2, workflow_tasks=7, events=22)
    assert shape.activities_in_run == 4
    assert "5 activities (4 in run, 1 in update handlers), 3 updates" in shape.describe()


def test_the_baseline_must_match_govhall_in_activities_their_places_and_updates() -> None:
    govhall = Shape(5, 1, 3, timers=1, search_attribute_upserts=9, workflow_tasks=12,
                    events=80)
    assert mismatch(govhall, Shape(5, 1, 3, 0, 0, 10, 60)) == ""
    assert mismatch(govhall, Shape(4, 1, 3, 0, 0, 10, 60)) == (
        "activities: govhall 5, baseline 4")
    assert mismatch(govhall, Shape(5, 3, 3, 0, 0, 10, 60)) == (
        "activities in handlers: govhall 1, baseline 3")
    assert "updates: govhall 3, baseline 2" in mismatch(govhall, Shape(5, 1, 2, 0, 0, 10, 60))
    assert unexpected(EXPECTED[MINIMAL], Shape(4, 3, 3, 0, 0, 8, 40)) == ""
    assert unexpected(EXPECTED[MINIMAL], Shape(4, 2, 3, 0, 0, 8, 40)) == (
        "activities in handlers: counted 3, ran 2")


@pytest.mark.parametrize(("baseline", "settle"), [(SAME_SHAPE, False), (MINIMAL, False),
                                                  (SAME_SHAPE, True), (MINIMAL, True)])
async def test_each_baseline_runs_as_its_docstring_counts_it(
        time_skipping: WorkflowEnvironment, baseline: str, settle: bool) -> None:
    """Whether the first update comes at once or once the case is open (the latency pass)."""
    client: Client = time_skipping.client
    async with (Worker(client, task_queue=WORKFLOW_QUEUE, workflows=WORKFLOWS),
                Worker(client, task_queue=ACTIVITY_QUEUE, activities=ACTIVITIES)):
        figures = RunFigures(baseline, 1)
        workflow_id = await baseline_case(client, baseline, figures, settle=settle)
        shape = await case_shape(client, workflow_id, WORKFLOWS)
    expected = EXPECTED[baseline]
    assert (shape.activities, shape.activities_in_handlers, shape.updates) == (
        expected.activities, expected.activities_in_handlers, expected.updates)
    assert (shape.timers, shape.search_attribute_upserts) == (0, 0)
    assert sorted(figures.calls) == ["start", "update review", "update seal", "update sign"]


@asynccontextmanager
async def _govhall_workers(client: Client, activities: dict[str, Callable[..., Any]]
                           ) -> AsyncIterator[str]:
    """govhall's real workflow and the baselines, on task queues of their own; yields the
    workflow queue."""
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    async with (
        Worker(client, task_queue=f"{prefix}workflows", workflows=[ApprovalWorkflow]),
        Worker(client, task_queue=f"{prefix}review",
               activities=[a for n, a in activities.items() if n.startswith("review.")]),
        Worker(client, task_queue=f"{prefix}intake",
               activities=[a for n, a in activities.items() if n.startswith("intake.")]),
        Worker(client, task_queue=WORKFLOW_QUEUE, workflows=WORKFLOWS),
        Worker(client, task_queue=ACTIVITY_QUEUE, activities=ACTIVITIES),
    ):
        yield f"{prefix}workflows"


async def _approved_case(env: WorkflowEnvironment, signers: Signers, queue: str) -> str:
    """One case through review, sign and seal, each decision sent once the last answered."""
    number = f"AP-{uuid.uuid4().hex[:8]}"
    acceptance = signers.acceptance(number, accepted_at=await env.get_current_time())
    handle = await env.client.start_workflow(
        ApprovalWorkflow.run, c.ApprovalInput(acceptance), id=c.workflow_id(number),
        task_queue=queue)
    for who, stage, outcome in ((REVIEWER, c.Stage.REVIEW, c.Outcome.APPROVE),
                                (LEADER, c.Stage.SIGN, c.Outcome.APPROVE),
                                (SEALER, c.Stage.SEAL, c.Outcome.SEAL)):
        await handle.execute_update(c.DECIDE, signers.decision(number, who, stage, outcome),
                                    result_type=c.DecisionReceipt)
    return handle.id


async def test_the_same_shape_baseline_has_the_real_workflows_shape(
        time_skipping: WorkflowEnvironment, tmp_path: Path) -> None:
    """govhall's ApprovalWorkflowV2, its activities faked, against the same-shape baseline."""
    client: Client = time_skipping.client
    signers = Signers(tmp_path / "pki")
    async with _govhall_workers(client, Center(signers=signers).activities()) as queue:
        govhall = await case_shape(client, await _approved_case(time_skipping, signers, queue),
                                   [ApprovalWorkflow])
        same_shape = await case_shape(
            client, await baseline_case(client, SAME_SHAPE, RunFigures(SAME_SHAPE, 1)),
            WORKFLOWS)
    assert mismatch(govhall, same_shape) == ""
    assert (govhall.activities, govhall.activities_in_handlers, govhall.updates) == (5, 1, 3)
    # What the baseline leaves out, and says so: the upserts and the watcher's timer.
    assert govhall.search_attribute_upserts > 0 and govhall.timers > 0
    assert (same_shape.search_attribute_upserts, same_shape.timers) == (0, 0)


async def test_a_record_that_lags_into_the_seal_is_still_counted_in_run(
        time_skipping: WorkflowEnvironment, tmp_path: Path) -> None:
    """As seen on a loaded dev server: review's record still runs when the seal arrives, so
    the sign's record is scheduled after the seal update was accepted and done before it
    answered. By event order it looks like the seal's; replay says it is run's."""
    client: Client = time_skipping.client
    signers = Signers(tmp_path / "pki")
    center = Center(signers=signers)
    activities = center.activities()
    record, seal = activities[c.RECORD_TRANSITION], activities[c.SEAL_DECISION]
    seal_started, sign_recorded = asyncio.Event(), asyncio.Event()

    @activity.defn(name=c.RECORD_TRANSITION)
    async def lagging_record(transition: c.Transition) -> None:
        if transition.decision.stage == c.Stage.REVIEW:
            await seal_started.wait()
        await record(transition)
        if transition.decision.stage == c.Stage.SIGN:
            sign_recorded.set()

    @activity.defn(name=c.SEAL_DECISION)
    async def seal_after_the_sign_record(request: c.SealRequest) -> c.SealReceipt:
        seal_started.set()
        await sign_recorded.wait()
        # Until the server has the sign record's completion in the history, not only until
        # the record's function returned: the seal must answer after it.
        handle = client.get_workflow_handle(c.workflow_id(request.case_number))
        for _ in range(400):
            history = await handle.fetch_history()
            if sum(e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
                   for e in history.events) >= 3:  # open, review's record, sign's record
                break
            await asyncio.sleep(0.025)
        else:
            raise AssertionError("the sign's record never completed")
        receipt: c.SealReceipt = await seal(request)
        return receipt

    activities |= {c.RECORD_TRANSITION: lagging_record, c.SEAL_DECISION: seal_after_the_sign_record}
    async with _govhall_workers(client, activities) as queue:
        workflow_id = await _approved_case(time_skipping, signers, queue)
        shape = await case_shape(client, workflow_id, [ApprovalWorkflow])
        events = (await client.get_workflow_handle(workflow_id).fetch_history()).events
    # The lag happened: the sign's record (the 4th activity) lies inside the seal update.
    scheduled = [e.event_id for e in events if e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    done = {e.activity_task_completed_event_attributes.scheduled_event_id: e.event_id
            for e in events if e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED}
    seal_accepted = [e.event_id for e in events
                     if e.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED][-1]
    seal_answered = [e.event_id for e in events
                     if e.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED][-1]
    sign_record = scheduled[3]
    assert seal_accepted < sign_record and done[sign_record] < seal_answered
    assert [t.decision.stage for t in center.transitions] == ["review", "sign", "seal"]
    assert (shape.activities, shape.activities_in_handlers, shape.updates) == (5, 1, 3)


async def test_a_history_the_given_workflows_cannot_replay_is_refused(
        time_skipping: WorkflowEnvironment) -> None:
    client: Client = time_skipping.client
    async with (Worker(client, task_queue=WORKFLOW_QUEUE, workflows=WORKFLOWS),
                Worker(client, task_queue=ACTIVITY_QUEUE, activities=ACTIVITIES)):
        workflow_id = await baseline_case(client, MINIMAL, RunFigures(MINIMAL, 1))
        with pytest.raises(RuntimeError,
                           match=r"Workflow class bench\.MinimalApproval is not registered"):
            await case_shape(client, workflow_id, [ApprovalWorkflow])
