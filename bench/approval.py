"""The approval benchmark: whole cases through govhall, beside a bare Temporal baseline.

    .venv/bin/python -m bench.approval [--cases 500] [--concurrency 20] [--repeat 1]

One run starts the whole suite as `make run` does (embedded default: the
Temporal dev server on a SQLite file, the four services on SQLite) in a
throwaway var dir on free ports of 127.0.0.1. Then, on that same dev server:

- govhall: each case is submitted, reviewed, signed and sealed over
  gRPC/mTLS, as the department systems would (deploy/local/chain_driver.py);
- baseline: a bare workflow of the same shape in Temporal terms (one start,
  17 activities one after another, 3 updates; see bench/baseline.py) whose
  activities do nothing, served by workers in this process.

Both run the same number of cases at the same concurrency, after a warm-up
that is not counted. A case's latency runs from its first call to the reply
of its last decision (the seal). With --repeat K the two alternate K times,
in the order ABBA so neither always runs on the fuller database, and the
median ratio is printed. Read the ratio and the medians, not one absolute
figure: the machine is shared and noisy.
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

import temporalio
from temporalio.client import Client
from temporalio.worker import Worker

from bench import cpu
from bench.baseline import (
    ACTIVITIES,
    ACTIVITIES_PER_CASE,
    ACTIVITY_QUEUE,
    DECIDE,
    STAGES,
    UPDATES_PER_CASE,
    WORKFLOW_QUEUE,
    BareApprovalWorkflow,
    BareCase,
    BareDecision,
    BareReceipt,
)
from bench.figures import (
    RunFigures,
    cpu_table,
    describe_failure,
    failure_report,
    median,
    ratio,
    table,
)
from bench.shape import case_shape, mismatch
from bench.suite import EmbeddedSuite
from deploy.local.chain_driver import ChainDriver
from kernel.temporal import TemporalSecurity, connect
from workflows.approval_contract import workflow_id

GOVHALL = "govhall"
BASELINE = "baseline"
#: The issue's aim for govhall's throughput against the bare baseline's.
AIM = 0.7

#: One case of one system, start to end; returns the case's workflow id.
OneCase = Callable[[], Awaitable[str]]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.approval",
        description="Approval cases through govhall over gRPC, beside a bare Temporal "
                    "baseline on the same dev server.")
    parser.add_argument("--cases", type=_positive, default=500,
                        help="measured cases per system and round (default 500)")
    parser.add_argument("--concurrency", type=_positive, default=20,
                        help="cases in flight at once (default 20)")
    parser.add_argument("--repeat", type=_positive, default=1,
                        help="rounds of govhall and baseline, alternated (default 1)")
    parser.add_argument("--warmup", type=int, default=10,
                        help="cases per system before the first round, not counted (default 10)")
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


async def run_cases(system: str, one_case: OneCase, *, cases: int, concurrency: int,
                    round_number: int, case_timeout: float,
                    runner_pid: int | None = None) -> RunFigures:
    """``cases`` cases with at most ``concurrency`` in flight; every failure is counted."""
    figures = RunFigures(system, round_number)
    limit = asyncio.Semaphore(concurrency)
    before = cpu.sample(runner_pid)

    async def measured() -> None:
        async with limit:
            began = time.perf_counter()
            try:
                async with asyncio.timeout(case_timeout):
                    await one_case()
            except Exception as error:
                figures.fail(error)
            else:
                figures.record(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(measured() for _ in range(cases)))
    figures.wall_seconds = time.perf_counter() - began
    figures.cpu = cpu.used(before, cpu.sample(runner_pid))
    return figures


async def govhall_case(driver: ChainDriver) -> str:
    """One case through the chain; returns its workflow's id."""
    case_number, certificate = await driver.run_case()
    if not certificate:
        raise RuntimeError(f"case {case_number} was sealed without a certificate number")
    return workflow_id(case_number)


async def baseline_case(client: Client) -> str:
    """One bare case; returns its workflow's id."""
    case_number = uuid.uuid4().hex
    handle = await client.start_workflow(
        BareApprovalWorkflow.run, BareCase(case_number), id=f"bench-approval/{case_number}",
        task_queue=WORKFLOW_QUEUE)
    receipts: list[BareReceipt] = []
    for stage in STAGES:
        # As the review service sends a decision: an update with an id of its own.
        receipts.append(await handle.execute_update(
            DECIDE, BareDecision(stage), id=f"{DECIDE}/{uuid.uuid4()}",
            result_type=BareReceipt))
    if not receipts[-1].certificate_number:
        raise RuntimeError(f"baseline case {case_number} ended without a certificate")
    return handle.id


async def check_shapes(client: Client, systems: dict[str, OneCase], *,
                       case_timeout: float) -> str:
    """One more case of each, not measured, and their histories compared."""
    shapes = {}
    for system, one_case in systems.items():
        try:
            async with asyncio.timeout(case_timeout):
                shapes[system] = await case_shape(client, await one_case())
        except Exception as error:
            return f"WARNING: no shape check: a {system} case failed ({describe_failure(error)})"
    lines = [f"shape of one case, {system}: {shape.describe()}"
             for system, shape in shapes.items()]
    wrong = mismatch(shapes[GOVHALL], shapes[BASELINE])
    if wrong:
        lines.append(f"WARNING: the baseline's shape is not govhall's ({wrong}); "
                     "bench/baseline.py must follow workflows/approval.py")
    return "\n".join(lines)


def temporal_cli_version() -> str:
    cli = Path(sys.executable).parent / "temporal"
    try:
        reply = subprocess.run([str(cli), "--version"], capture_output=True, text=True,
                               timeout=30, check=False)
    except OSError:
        return "unknown"
    return reply.stdout.strip() or "unknown"


def describe_setting(args: argparse.Namespace, suite: EmbeddedSuite) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return "\n".join([
        "govhall approval benchmark",
        f"machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
        f"{platform.machine()} {platform.system()} {platform.release()}, "
        f"load average at start {load}",
        f"python {platform.python_version()}, temporalio {temporalio.__version__}, "
        f"{temporal_cli_version()}",
        "setting: embedded default (Temporal dev server on a SQLite file, WAL, "
        "synchronous=normal; the four services on SQLite; all on 127.0.0.1), "
        f"started in {suite.startup_seconds}",
        f"govhall: submit, review, sign, seal over gRPC/mTLS; baseline: bare workflow, "
        f"1 start + {ACTIVITIES_PER_CASE} no-op activities + {UPDATES_PER_CASE} updates, "
        "workers in this process, same dev server",
        f"cases {args.cases} per system and round, concurrency {args.concurrency}, "
        f"warm-up {args.warmup}, rounds {args.repeat}; latency = first call to seal reply",
    ])


async def measure(args: argparse.Namespace, suite: EmbeddedSuite) -> list[RunFigures]:
    driver = ChainDriver.connect(intake_address=suite.address("intake"),
                                 review_address=suite.address("review"),
                                 pki_dir=suite.pki_dir)
    client = await connect(suite.address("temporal"),
                           security=TemporalSecurity.embedded(suite.pki_dir))
    systems: dict[str, OneCase] = {
        GOVHALL: lambda: govhall_case(driver), BASELINE: lambda: baseline_case(client)}
    runs: list[RunFigures] = []
    runner_pid = suite.process.pid if suite.process is not None else None
    try:
        async with (Worker(client, task_queue=WORKFLOW_QUEUE,
                           workflows=[BareApprovalWorkflow]),
                    Worker(client, task_queue=ACTIVITY_QUEUE, activities=ACTIVITIES)):
            for system, one_case in systems.items():
                if args.warmup > 0:
                    warm = await run_cases(system, one_case, cases=args.warmup,
                                           concurrency=args.concurrency, round_number=0,
                                           case_timeout=args.case_timeout)
                    print(f"warm-up {system}: {warm.succeeded} cases went through, "
                          f"{warm.failed} failed", flush=True)
                    if warm.failed:
                        print(failure_report([warm]), flush=True)
            print(await check_shapes(client, systems, case_timeout=args.case_timeout), flush=True)
            for round_number in range(1, args.repeat + 1):
                order = [GOVHALL, BASELINE] if round_number % 2 else [BASELINE, GOVHALL]
                for system in order:
                    figures = await run_cases(system, systems[system], cases=args.cases,
                                              concurrency=args.concurrency,
                                              round_number=round_number,
                                              case_timeout=args.case_timeout,
                                              runner_pid=runner_pid)
                    print(f"round {round_number} {system}: {figures.throughput:.2f} cases/s, "
                          f"{figures.failed} failed", flush=True)
                    runs.append(figures)
    finally:
        await driver.close()
    return runs


def report(runs: list[RunFigures], repeat: int) -> str:
    lines = ["", table(runs), ""]
    ratios: list[float] = []
    for round_number in range(1, repeat + 1):
        pair = {run.system: run for run in runs if run.round_number == round_number}
        ratios.append(ratio(pair[GOVHALL], pair[BASELINE]))
    if repeat == 1:
        lines.append(f"ratio (govhall / baseline throughput): {ratios[0]:.2f}")
    else:
        lines += [f"round {n} ratio (govhall / baseline throughput): {r:.2f}"
                  for n, r in enumerate(ratios, start=1)]
        for system in (GOVHALL, BASELINE):
            mine = [run for run in runs if run.system == system]
            lines.append(f"median over {repeat} rounds, {system}: "
                         f"{median([r.throughput for r in mine]):.2f} cases/s, "
                         f"p50 {median([r.percentile_ms(50) for r in mine]):.1f} ms, "
                         f"p99 {median([r.percentile_ms(99) for r in mine]):.1f} ms")
        lines.append(f"median ratio (govhall / baseline throughput): {median(ratios):.2f}")
    verdict = "met" if median(ratios) >= AIM else "NOT met"
    lines.append(f"aim: ratio >= {AIM:.2f}: {verdict} ({median(ratios):.3f})")
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
    try:
        print("starting the suite (embedded default) on free ports...", flush=True)
        suite.start()
        print(describe_setting(args, suite), flush=True)
        runs = asyncio.run(measure(args, suite))
    finally:
        stopped = suite.stop()
        if stopped not in (0, None):
            print(f"the runner stopped with exit code {stopped}; its output ends:\n"
                  f"{suite.output[-2000:]}", file=sys.stderr, flush=True)
        if args.keep_var:
            print(f"var dir kept: {suite.var_dir}", flush=True)
        else:
            shutil.rmtree(var_root, ignore_errors=True)
    print(report(runs, args.repeat), flush=True)
    return 0 if all(not run.failed for run in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
