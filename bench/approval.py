"""The approval benchmark: whole cases through govhall, beside two bare Temporal baselines.

    .venv/bin/python -m bench.approval [--cases 500] [--concurrency 20] [--repeat 1]

One run starts the whole suite as `make run` does (embedded default: the
Temporal dev server on a SQLite file, the four services on SQLite) in a
throwaway var dir on free ports of 127.0.0.1. Then, on that same dev server:

- govhall: each case is submitted, reviewed, signed and sealed over
  gRPC/mTLS, as the department systems would (deploy/local/chain_driver.py);
- same-shape: a bare workflow with govhall's case shape in Temporal terms
  (1 start, 5 activities: 4 in run, 1 in the seal's handler; 3 updates);
- minimal: the least a case needs (1 start, 4 activities: 1 in run, 1 in
  each update's handler; 3 updates); both baselines in bench/baseline.py,
  their activities no-ops served by workers in this process.

Before measuring, one case of each runs alone and their histories are
compared (bench/shape.py); a baseline that no longer has govhall's shape is
reported with a WARNING. Then a latency pass runs --latency-cases cases of
each system one at a time (concurrency 1), timing every call; there the
first decision waits until the case is open (asked by query), as a
reviewer's click comes after the case reached the review desk, so no
decision's latency includes the opening. Then the
throughput rounds: the three systems run the same number of cases at
--concurrency, after a warm-up that is not counted; with --repeat K they
take turns K times in the order govhall, same-shape, minimal, then the
reverse, and so on (ABBA), so none always runs on the fuller database.

A case's latency runs from its first call to the reply of its last decision
(the seal). After each run the benchmark waits, outside the measured time,
until every workflow the run started has completed, so the next run starts
on a quiet server. Read the ratios and the medians, not one absolute figure:
the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import temporalio
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from bench import cpu
from bench.baseline import (
    ACTIVITIES,
    ACTIVITY_QUEUE,
    DECIDE,
    EXPECTED,
    MINIMAL,
    OPENED,
    SAME_SHAPE,
    STAGES,
    WORKFLOW_QUEUE,
    WORKFLOW_TYPES,
    WORKFLOWS,
    BareCase,
    BareDecision,
    BareReceipt,
)
from bench.figures import (
    LATENCY_PASS,
    RunFigures,
    call_figures,
    call_table,
    cpu_table,
    describe_failure,
    failure_report,
    median,
    round_ratios,
    table,
    verdict,
)
from bench.shape import Shape, case_shape, mismatch, unexpected
from bench.suite import EmbeddedSuite
from deploy.local.chain_driver import ChainDriver
from kernel.temporal import TemporalSecurity, connect
from workflows.approval import ApprovalWorkflow
from workflows.approval_contract import STATUS, workflow_id

GOVHALL = "govhall"
#: The systems, in the order of odd rounds (even rounds run them in reverse).
SYSTEMS = (GOVHALL, SAME_SHAPE, MINIMAL)
#: The issue's aims: govhall's throughput against each baseline's, and one decision's p99.
AIMS = {SAME_SHAPE: 0.85, MINIMAL: 0.5}
DECISION_P99_AIM_MS = 250.0

#: govhall's calls, as the per-call table names them.
SUBMIT = "SubmitApplication"

T = TypeVar("T")


def decide_call(stage: str) -> str:
    """govhall's decision RPC at one stage."""
    return f"DecideCase {stage}"


DECISIONS = tuple(decide_call(stage) for stage in STAGES)
#: How often the latency pass asks whether a case is open yet.
OPEN_POLL_SECONDS = 0.02

#: One case of one system, start to end, timing its calls into the figures given;
#: returns the case's workflow id.
OneCase = Callable[[RunFigures], Awaitable[str]]
#: Waits until a case's workflow has completed; raises if it did not complete.
Drain = Callable[[str], Awaitable[object]]


def round_order(round_number: int) -> tuple[str, ...]:
    """The systems in the order they run in a round: as listed, then reversed (ABBA)."""
    return SYSTEMS if round_number % 2 else tuple(reversed(SYSTEMS))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.approval",
        description="Approval cases through govhall over gRPC, beside two bare Temporal "
                    "baselines (same shape, minimal) on the same dev server.")
    parser.add_argument("--cases", type=_positive, default=500,
                        help="measured cases per system and round (default 500)")
    parser.add_argument("--concurrency", type=_positive, default=20,
                        help="cases in flight at once in the rounds (default 20)")
    parser.add_argument("--repeat", type=_positive, default=1,
                        help="rounds of the three systems, alternated ABBA (default 1)")
    parser.add_argument("--warmup", type=int, default=10,
                        help="cases per system before the first round, not counted (default 10)")
    parser.add_argument("--latency-cases", type=int, default=50,
                        help="cases per system one at a time before the rounds, for the "
                             "concurrency-1 latencies (default 50; 0 skips the pass)")
    parser.add_argument("--case-timeout", type=float, default=120.0,
                        help="seconds after which a case counts as failed (default 120)")
    parser.add_argument("--keep-var", action="store_true",
                        help="keep the suite's var dir (logs, databases) and print where it is")
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


async def timed(figures: RunFigures, call: str, pending: Awaitable[T]) -> T:
    """Await one call and record its latency under its name (only if it answered)."""
    began = time.perf_counter()
    answer = await pending
    figures.record_call(call, time.perf_counter() - began)
    return answer


async def run_cases(system: str, one_case: OneCase, *, cases: int, concurrency: int,
                    round_number: int, case_timeout: float, drain: Drain | None = None,
                    runner_pid: int | None = None) -> RunFigures:
    """``cases`` cases with at most ``concurrency`` in flight; every failure is counted.

    Then, outside the measured time, ``drain`` waits for each workflow of a case
    that went through; one that does not complete is counted as unfinished.
    """
    figures = RunFigures(system, round_number, concurrency)
    limit = asyncio.Semaphore(concurrency)
    started: list[str] = []
    before = cpu.sample(runner_pid)

    async def measured() -> None:
        async with limit:
            began = time.perf_counter()
            try:
                async with asyncio.timeout(case_timeout):
                    started.append(await one_case(figures))
            except Exception as error:
                figures.fail(error)
            else:
                figures.record(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(measured() for _ in range(cases)))
    figures.wall_seconds = time.perf_counter() - began
    figures.cpu = cpu.used(before, cpu.sample(runner_pid))
    if drain is not None:
        await _drain(figures, started, drain, concurrency=concurrency,
                     seconds_each=case_timeout)
    return figures


async def _drain(figures: RunFigures, workflow_ids: list[str], drain: Drain, *,
                 concurrency: int, seconds_each: float) -> None:
    limit = asyncio.Semaphore(concurrency)

    async def ended(workflow_id: str) -> None:
        async with limit:
            try:
                async with asyncio.timeout(seconds_each):
                    await drain(workflow_id)
            except Exception as error:
                figures.unfinished[describe_failure(error)] += 1

    began = time.perf_counter()
    await asyncio.gather(*(ended(i) for i in workflow_ids))
    figures.drain_seconds = time.perf_counter() - began


async def until_open(client: Client, workflow: str, query: str,
                     is_open: Callable[[Any], bool]) -> None:
    """Wait until the case's workflow says it is open; the caller's timeout bounds the wait."""
    handle = client.get_workflow_handle(workflow)
    while True:
        try:
            if is_open(await handle.query(query)):
                return
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:  # not started yet: intake's outbox
                raise
        await asyncio.sleep(OPEN_POLL_SECONDS)


def govhall_open(status: Any) -> bool:
    # The status as the data converter reads it without a type: a dict, or None.
    return isinstance(status, dict) and status.get("deadlines") is not None


async def govhall_case(driver: ChainDriver, figures: RunFigures, *,
                       client: Client | None = None) -> str:
    """One case through the chain, each RPC timed; returns its workflow's id.

    With a ``client``, the first decision waits until the case is open (its
    deadlines and review task recorded), as a reviewer's click comes later:
    so the review decision's latency is the decision's own.
    """
    case_number = await timed(figures, SUBMIT, driver.submit())
    if client is not None:
        await until_open(client, workflow_id(case_number), STATUS, govhall_open)
    await timed(figures, decide_call("review"), driver.review_case(case_number))
    await timed(figures, decide_call("sign"), driver.sign_case(case_number))
    certificate = await timed(figures, decide_call("seal"), driver.seal_case(case_number))
    if not certificate:
        raise RuntimeError(f"case {case_number} was sealed without a certificate number")
    return workflow_id(case_number)


async def baseline_case(client: Client, baseline: str, figures: RunFigures, *,
                        settle: bool = False) -> str:
    """One bare case of a baseline, the start and each update timed; returns its workflow's id.

    With ``settle``, the first update waits until the case is open, as govhall's does.
    """
    case_number = uuid.uuid4().hex
    handle = await timed(figures, "start", client.start_workflow(
        WORKFLOW_TYPES[baseline], BareCase(case_number),
        id=f"bench-{baseline}/{case_number}", task_queue=WORKFLOW_QUEUE))
    if settle:
        await until_open(client, handle.id, OPENED, lambda opened: opened is True)
    receipt = BareReceipt(case_number, "", "")
    for stage in STAGES:
        # As the review service sends a decision: an update with an id of its own.
        receipt = await timed(figures, f"update {stage}", handle.execute_update(
            DECIDE, BareDecision(stage), id=f"{DECIDE}/{uuid.uuid4()}",
            result_type=BareReceipt))
    if not receipt.certificate_number:
        raise RuntimeError(f"{baseline} case {case_number} ended without a certificate")
    return handle.id


#: The workflow classes each system's histories replay on (to find where activities run).
WORKFLOW_CLASSES: dict[str, list[type]] = {
    GOVHALL: [ApprovalWorkflow], SAME_SHAPE: list(WORKFLOWS), MINIMAL: list(WORKFLOWS)}


async def check_shapes(client: Client, systems: dict[str, OneCase], *,
                       case_timeout: float) -> tuple[dict[str, Shape], str]:
    """One more case of each system, alone and not measured, and their histories compared."""
    shapes: dict[str, Shape] = {}
    lines: list[str] = []
    for system, one_case in systems.items():
        try:
            async with asyncio.timeout(case_timeout):
                shapes[system] = await case_shape(
                    client, await one_case(RunFigures(system, LATENCY_PASS)),
                    WORKFLOW_CLASSES[system])
        except Exception as error:
            lines.append(f"WARNING: no shape for {system}: its case failed "
                         f"({describe_failure(error)})")
    lines += [f"shape of one case, {system}: {shape.describe()}"
              for system, shape in shapes.items()]
    if GOVHALL in shapes and SAME_SHAPE in shapes:
        wrong = mismatch(shapes[GOVHALL], shapes[SAME_SHAPE])
        if wrong:
            lines.append(f"WARNING: the same-shape baseline's shape is not govhall's ({wrong}); "
                         "bench/baseline.py must follow workflows/approval.py")
    for baseline, expected in EXPECTED.items():
        if baseline in shapes and (wrong := unexpected(expected, shapes[baseline])):
            lines.append(f"WARNING: the {baseline} baseline did not run as bench/baseline.py "
                         f"counts it ({wrong})")
    return shapes, "\n".join(lines)


def temporal_cli_version() -> str:
    cli = Path(sys.executable).parent / "temporal"
    try:
        reply = subprocess.run([str(cli), "--version"], capture_output=True, text=True,
                               timeout=30, check=False)
    except OSError:
        return "unknown"
    return reply.stdout.strip() or "unknown"


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def describe_setting(args: argparse.Namespace, suite: EmbeddedSuite) -> str:
    same, least = EXPECTED[SAME_SHAPE], EXPECTED[MINIMAL]
    return "\n".join([
        "govhall approval benchmark",
        f"machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
        f"{platform.machine()} {platform.system()} {platform.release()}, "
        f"load average at start {load_average()}",
        f"python {platform.python_version()}, temporalio {temporalio.__version__}, "
        f"{temporal_cli_version()}",
        "setting: embedded default (Temporal dev server on a SQLite file, WAL, "
        "synchronous=normal; the four services on SQLite; all on 127.0.0.1), "
        f"started in {suite.startup_seconds}",
        "govhall: submit, review, sign, seal over gRPC/mTLS; "
        f"same-shape: 1 start + {same.activities} no-op activities "
        f"({same.activities_in_handlers} in a handler) + {same.updates} updates; "
        f"minimal: 1 start + {least.activities} no-op activities "
        f"({least.activities_in_handlers} in handlers) + {least.updates} updates; "
        "baselines' workers in this process, same dev server",
        f"rounds: {args.cases} cases per system, concurrency {args.concurrency}, "
        f"warm-up {args.warmup}, {args.repeat} rounds (ABBA); latency pass: "
        f"{args.latency_cases} cases per system at concurrency 1, each first decision "
        "sent once the case is open; "
        "case latency = first call to seal reply",
    ])


async def measure(args: argparse.Namespace, suite: EmbeddedSuite
                  ) -> tuple[list[RunFigures], dict[str, Shape]]:
    driver = ChainDriver.connect(intake_address=suite.address("intake"),
                                 review_address=suite.address("review"),
                                 pki_dir=suite.pki_dir)
    client = await connect(suite.address("temporal"),
                           security=TemporalSecurity.embedded(suite.pki_dir))
    systems: dict[str, OneCase] = {
        GOVHALL: lambda figures: govhall_case(driver, figures),
        SAME_SHAPE: lambda figures: baseline_case(client, SAME_SHAPE, figures),
        MINIMAL: lambda figures: baseline_case(client, MINIMAL, figures)}

    #: In the latency pass, each first decision waits until its case is open.
    settled: dict[str, OneCase] = {
        GOVHALL: lambda figures: govhall_case(driver, figures, client=client),
        SAME_SHAPE: lambda figures: baseline_case(client, SAME_SHAPE, figures, settle=True),
        MINIMAL: lambda figures: baseline_case(client, MINIMAL, figures, settle=True)}

    async def drain(workflow: str) -> object:
        return await client.get_workflow_handle(workflow).result()

    runs: list[RunFigures] = []
    runner_pid = suite.process.pid if suite.process is not None else None
    try:
        async with (Worker(client, task_queue=WORKFLOW_QUEUE, workflows=WORKFLOWS),
                    Worker(client, task_queue=ACTIVITY_QUEUE, activities=ACTIVITIES)):
            for system, one_case in systems.items():
                if args.warmup > 0:
                    warm = await run_cases(system, one_case, cases=args.warmup,
                                           concurrency=args.concurrency, round_number=0,
                                           case_timeout=args.case_timeout, drain=drain)
                    print(f"warm-up {system}: {warm.succeeded} cases went through, "
                          f"{warm.failed} failed", flush=True)
                    if warm.failed or warm.unfinished:
                        print(failure_report([warm]), flush=True)
            shapes, checked = await check_shapes(client, systems,
                                                 case_timeout=args.case_timeout)
            print(checked, flush=True)
            if args.latency_cases > 0:
                for system in SYSTEMS:
                    figures = await run_cases(system, settled[system], cases=args.latency_cases,
                                              concurrency=1, round_number=LATENCY_PASS,
                                              case_timeout=args.case_timeout, drain=drain,
                                              runner_pid=runner_pid)
                    print(f"latency pass {system}: p50 {figures.percentile_ms(50):.1f} ms a "
                          f"case, {figures.failed} failed (load {load_average()})", flush=True)
                    runs.append(figures)
            for round_number in range(1, args.repeat + 1):
                for system in round_order(round_number):
                    figures = await run_cases(system, systems[system], cases=args.cases,
                                              concurrency=args.concurrency,
                                              round_number=round_number,
                                              case_timeout=args.case_timeout, drain=drain,
                                              runner_pid=runner_pid)
                    print(f"round {round_number} {system}: {figures.throughput:.2f} cases/s, "
                          f"{figures.failed} failed, drained in {figures.drain_seconds:.1f} s "
                          f"(load {load_average()})", flush=True)
                    runs.append(figures)
    finally:
        await driver.close()
    return runs, shapes


def report(runs: list[RunFigures], repeat: int, shapes: dict[str, Shape] | None = None) -> str:
    lines = ["", table(runs), ""]
    rounds = [run for run in runs if run.round_number != LATENCY_PASS]
    ratios = {baseline: round_ratios(rounds, GOVHALL, baseline) for baseline in AIMS}
    for number in range(1, repeat + 1):
        if all(len(found) >= number for found in ratios.values()):
            lines.append(f"round {number} ratios: " + ", ".join(
                f"govhall / {baseline} {found[number - 1]:.2f}"
                for baseline, found in ratios.items()))
    for system in SYSTEMS:
        mine = [run for run in rounds if run.system == system]
        if mine:
            lines.append(f"median over {len(mine)} rounds, {system}: "
                         f"{median([r.throughput for r in mine]):.2f} cases/s, "
                         f"p50 {median([r.percentile_ms(50) for r in mine]):.1f} ms, "
                         f"p99 {median([r.percentile_ms(99) for r in mine]):.1f} ms")
    for baseline, aim in AIMS.items():
        value = median(ratios[baseline])
        lines.append(f"median ratio govhall / {baseline} (throughput): {value:.2f}; "
                     f"aim >= {aim:.2f}: {verdict(value, aim)}")
    calls = call_figures(runs)
    if calls:
        lines += ["", "latency of each call (concurrency 1: the latency pass; "
                  "higher: all rounds merged)", call_table(calls)]
    decisions = [c for c in calls if c.system == GOVHALL and c.concurrency == 1
                 and c.call in DECISIONS]
    if decisions:
        worst = max(decisions, key=lambda c: c.p99_ms)
        lines.append(f"aim: a decision's p99 <= {DECISION_P99_AIM_MS:.0f} ms at concurrency 1: "
                     f"{verdict(worst.p99_ms, DECISION_P99_AIM_MS, at_most=True)} "
                     f"(worst: {worst.call} p99 {worst.p99_ms:.1f} ms)")
    else:
        lines.append(f"aim: a decision's p99 <= {DECISION_P99_AIM_MS:.0f} ms at concurrency 1: "
                     "not measured (no latency pass)")
    if shapes:
        lines += ["", "one case in Temporal terms:"]
        lines += [f"  {system}: {shape.activities} activities, {shape.updates} updates, "
                  f"{shape.events} history events" for system, shape in shapes.items()]
    usage = cpu_table(runs)
    if usage:
        lines += ["", usage]
    failures = failure_report(runs)
    if failures:
        lines += ["", "FAILED CASES (counted above, not in the throughput):", failures]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    var_root = Path(tempfile.mkdtemp(prefix="govhall-bench-"))
    suite = EmbeddedSuite(var_root / "var")
    runs: list[RunFigures] = []
    shapes: dict[str, Shape] = {}
    try:
        print("starting the suite (embedded default) on free ports...", flush=True)
        suite.start()
        print(describe_setting(args, suite), flush=True)
        runs, shapes = asyncio.run(measure(args, suite))
    finally:
        stopped = suite.stop()
        if stopped not in (0, None):
            print(f"the runner stopped with exit code {stopped}; its output ends:\n"
                  f"{suite.output[-2000:]}", file=sys.stderr, flush=True)
        if args.keep_var:
            print(f"var dir kept: {suite.var_dir}", flush=True)
        else:
            shutil.rmtree(var_root, ignore_errors=True)
    print(report(runs, args.repeat, shapes), flush=True)
    print(f"load average at the end: {load_average()}", flush=True)
    return 0 if all(not run.failed and not run.unfinished for run in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
