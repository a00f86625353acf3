"""The complaints benchmark: a burst of platform pushes, beside a bare insert handler.

    .venv/bin/python -m bench.complaints [--pushes 10000] [--duplicates 0.1]
                                         [--open311 1000] [--concurrency 32] [--repeat 1]

One run starts the whole suite as `make run` does (embedded default: the
Temporal dev server, the four services on SQLite, the worker) in a throwaway
var dir on free ports of 127.0.0.1, and beside it a **bare** gRPC server in a
process of its own: the same ``SubmitComplaint`` RPC over the same mTLS, whose
handler only inserts the row (one SQLite file with the same pragmas, a unique
(platform, external id) constraint, one commit per push) and answers.

Each round pushes the same burst into both, in turns (ABBA with --repeat):
--pushes pushes, a share of them (--duplicates) re-pushes of an earlier
case with the same content, from the two sample platforms' own systems
(``hotline-12345``, ``provincial-complaint-portal``) at --concurrency calls
in flight. Then --open311 form-encoded ``POST requests`` go to the Open311
façade with the platforms' api keys.

Figures: accepted pushes per second and p50/p99 latency of one push, for
govhall and the bare handler, and their ratio (the issue's aim: at least 0.5
of the bare handler's rate). Read the ratio and the medians, not one absolute
figure: the machine is shared and noisy.

After each govhall round (and its warm-up) the bench waits, outside the measured
time and up to --start-deadline, until the outbox has started the workflow of every
case so far, so that those starts do not run during the next round (the bare
handler's among them, which would favour govhall's ratio); it prints how many were
left, how long they took, and the round's start rate (its cases over the time from its
first push to its last start). It then waits, within the same deadline, until every
case has been opened (its workflow's first activity set its deadlines): the last
workflows started are still running their first steps in Temporal, the worker and the
complaints service when their start is recorded, and measured (stop 16, per-process CPU
during the rounds) that left work took 0.2-0.4 of a core in the Temporal server and 0.1-0.2
in the worker through the next rounds, the bare handler's and govhall's alike.

Then the run proves nothing was lost or doubled: the number of unique
pushes equals the number of cases in complaints' database, and equals the
number of ComplaintWorkflow runs Temporal holds once the outbox has started
them all (waited for, outside the measured time, up to --start-deadline).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from bench.figures import describe_failure, latency_histogram, median
from bench.suite import EmbeddedSuite
from deploy.local import processes
from govhall.complaints.v1 import complaints_pb2, complaints_pb2_grpc
from kernel.db import SQLITE_PRAGMAS
from kernel.grpcserver import secure_channel, server_credentials
from kernel.pki import ca_cert_path
from kernel.temporal import TemporalSecurity, connect

GOVHALL = "govhall"
BARE = "bare"
OPEN311 = "open311"
#: The issue's aim: govhall's accepted pushes per second against the bare handler's.
AIM = 0.5
#: The sample platforms and the calling systems they push through (deploy/sample).
PLATFORM_SYSTEMS = {"12345": "hotline-12345", "LNZWFW": "provincial-complaint-portal"}
SUBMIT_METHOD = "/govhall.complaints.v1.ComplaintsService/SubmitComplaint"
KINDS = (complaints_pb2.COMPLAINT_KIND_CONSULTATION, complaints_pb2.COMPLAINT_KIND_HELP_REQUEST,
         complaints_pb2.COMPLAINT_KIND_SUGGESTION, complaints_pb2.COMPLAINT_KIND_COMPLAINT,
         complaints_pb2.COMPLAINT_KIND_REPORT)
#: Open311's names of the kinds (the service definitions' ``kind`` attribute).
OPEN311_KINDS = {complaints_pb2.COMPLAINT_KIND_CONSULTATION: "consultation",
                 complaints_pb2.COMPLAINT_KIND_HELP_REQUEST: "help_request",
                 complaints_pb2.COMPLAINT_KIND_SUGGESTION: "suggestion",
                 complaints_pb2.COMPLAINT_KIND_COMPLAINT: "complaint",
                 complaints_pb2.COMPLAINT_KIND_REPORT: "report"}
#: The workflow type the outbox starts for every case (workflows/complaint_contract.py).
COMPLAINT_WORKFLOW = "ComplaintWorkflow"


# ---- the burst -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Push:
    """One push as a platform sends it: through its system, with the request."""

    system: str
    request: complaints_pb2.SubmitComplaintRequest
    #: Whether this push repeats an earlier one (same platform, external id, content).
    duplicate: bool


def burst(*, pushes: int, duplicates: float, categories: Sequence[str], seed: int,
          tag: str) -> list[Push]:
    """``pushes`` pushes, ``duplicates`` of them re-pushes of earlier ones, shuffled by ``seed``.

    External ids carry ``tag`` so every round's cases are new. The complainant's phone is
    made up (a 199 prefix no carrier issues).
    """
    rng = random.Random(seed)
    repeats = round(pushes * duplicates)
    originals: list[Push] = []
    for number in range(pushes - repeats):
        platform_system = rng.choice(sorted(PLATFORM_SYSTEMS.values()))
        originals.append(Push(platform_system, complaints_pb2.SubmitComplaintRequest(
            external_id=f"bench-{tag}-{number:06d}",
            kind=rng.choice(KINDS),
            urgent=rng.random() < 0.05,
            category_code=rng.choice(categories),
            content=f"路灯损坏，第{number}号，请尽快处理。",
            location=complaints_pb2.Location(latitude=41.8 + rng.random() / 10,
                                             longitude=123.4 + rng.random() / 10),
            complainant_name="测试群众",
            complainant_phone=f"199{rng.randrange(10**8):08d}"), duplicate=False))
    again = [Push(push.system, push.request, duplicate=True)
             for push in rng.sample(originals, repeats)] if repeats else []
    everything = originals + again
    rng.shuffle(everything)
    return everything


@dataclass
class BurstFigures:
    """One burst into one system."""

    system: str
    round_number: int
    histogram: Any = field(default_factory=latency_histogram)
    accepted: int = 0
    replayed: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    wall_seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Accepted pushes (new or re-pushed, each answered with its case) per second."""
        return (self.accepted + self.replayed) / self.wall_seconds if self.wall_seconds else 0.0

    def percentile_ms(self, percentile: float) -> float:
        if not self.histogram.get_total_count():
            return float("nan")
        return float(self.histogram.get_value_at_percentile(percentile)) / 1000.0


async def push_all(stubs: dict[str, Any], pushes: Sequence[Push], *, concurrency: int,
                   figures: BurstFigures) -> None:
    """Send every push with ``concurrency`` calls in flight; time each; count the answers."""
    queue: asyncio.Queue[Push] = asyncio.Queue()
    for push in pushes:
        queue.put_nowait(push)

    async def pusher() -> None:
        while True:
            try:
                push = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            began = time.perf_counter()
            try:
                reply = await stubs[push.system].SubmitComplaint(push.request, timeout=60)
            except grpc.aio.AioRpcError as error:
                figures.failures[describe_failure(error)] += 1
                continue
            figures.histogram.record_value(
                max(1, round((time.perf_counter() - began) * 1_000_000)))
            if reply.replayed:
                figures.replayed += 1
            else:
                figures.accepted += 1

    began = time.perf_counter()
    await asyncio.gather(*(pusher() for _ in range(concurrency)))
    figures.wall_seconds = time.perf_counter() - began


# ---- the bare handler ----------------------------------------------------------------------

def serve_bare(port: int, pki_dir: Path, database: Path) -> None:
    """The baseline: SubmitComplaint over mTLS that only inserts the row and answers."""
    connection = sqlite3.connect(database, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        connection.execute(f"PRAGMA {pragma}")
    connection.execute(
        "CREATE TABLE IF NOT EXISTS pushes (case_number TEXT PRIMARY KEY, platform TEXT NOT "
        "NULL, external_id TEXT NOT NULL, body BLOB NOT NULL, UNIQUE (platform, external_id))")
    numbers = iter(range(1, 10**9))

    async def submit(request: complaints_pb2.SubmitComplaintRequest,
               context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        common_names = list(context.auth_context().get("x509_common_name", [b""]))
        platform = common_names[0].decode()
        case_number = f"CP-00000000-{next(numbers):06d}"
        inserted = connection.execute(
            "INSERT OR IGNORE INTO pushes VALUES (?, ?, ?, ?)",
            (case_number, platform, request.external_id, request.SerializeToString())).rowcount
        if not inserted:
            case_number = connection.execute(
                "SELECT case_number FROM pushes WHERE platform = ? AND external_id = ?",
                (platform, request.external_id)).fetchone()[0]
        return complaints_pb2.SubmitComplaintResponse(
            complaint=complaints_pb2.Complaint(case_number=case_number,
                                               external_id=request.external_id),
            replayed=not inserted)

    async def serve() -> None:
        server = grpc.aio.server()
        handler = grpc.method_handlers_generic_handler(
            "govhall.complaints.v1.ComplaintsService",
            {"SubmitComplaint": grpc.unary_unary_rpc_method_handler(
                submit,
                request_deserializer=complaints_pb2.SubmitComplaintRequest.FromString,
                response_serializer=complaints_pb2.SubmitComplaintResponse.SerializeToString)})
        server.add_generic_rpc_handlers((handler,))
        server.add_secure_port(f"127.0.0.1:{port}", server_credentials(pki_dir))
        await server.start()
        print("ready", flush=True)
        await server.wait_for_termination()

    asyncio.run(serve())


class BareServer:
    """The bare handler in a process of its own, as govhall's complaints service is."""

    def __init__(self, pki_dir: Path, var_dir: Path) -> None:
        self.port = processes.free_ports(1)[0]
        self.database = var_dir / "bare.sqlite3"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.complaints", "--serve-bare", str(self.port),
             str(pki_dir), str(self.database)], stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the bare handler did not start")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def rows(self) -> int:
        with sqlite3.connect(self.database) as connection:
            return int(connection.execute("SELECT count(*) FROM pushes").fetchone()[0])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


# ---- what the run proves -------------------------------------------------------------------

def cases_in_database(var_dir: Path) -> int:
    """The complaint cases complaints' SQLite database holds."""
    with sqlite3.connect(f"file:{var_dir / 'db' / 'complaints.sqlite3'}?mode=ro",
                         uri=True) as connection:
        return int(connection.execute("SELECT count(*) FROM complaint_cases").fetchone()[0])


def unstarted_cases(database: Path) -> int:
    """The cases in complaints' SQLite database ``database`` whose workflow the outbox has
    not started yet."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        return int(connection.execute(
            "SELECT count(*) FROM complaint_cases WHERE NOT workflow_started").fetchone()[0])


def unopened_cases(database: Path) -> int:
    """The cases in complaints' SQLite database ``database`` that no workflow has opened yet
    (the opening activity sets the deadlines and the policy version)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        return int(connection.execute(
            "SELECT count(*) FROM complaint_cases WHERE policy_version IS NULL").fetchone()[0])


@dataclass(frozen=True)
class Drain:
    """The outbox catching up after a govhall round, outside the measured time."""

    #: Cases whose workflow was not started yet when the round's last push was answered.
    left: int
    seconds: float
    #: Whether every case's workflow was started before the deadline.
    drained: bool
    #: Seconds until every case was opened too (its workflow's first steps done).
    opened_seconds: float = 0.0
    #: Whether every case was opened before the deadline.
    opened: bool = True

    def rate(self, cases: int, round_seconds: float) -> float:
        """Workflows the outbox started per second for the ``cases`` of a round, from the
        round's first push to its last case's start."""
        total = round_seconds + self.seconds
        return cases / total if total > 0 else 0.0


async def wait_for_outbox(database: Path, *, deadline_seconds: float,
                          poll_seconds: float = 0.25) -> Drain:
    """Wait until the outbox has started every case's workflow and every case is opened
    (its workflow's first activity done), or the deadline passes.

    A govhall round leaves workflows to start; started while the next round runs, they
    would take their CPU from it (and from the bare handler's round, favouring govhall's
    ratio), so the bench waits for them here, outside the measured time.
    """
    began = time.monotonic()
    left = unstarted_cases(database)
    remaining = left
    while remaining and time.monotonic() - began < deadline_seconds:
        await asyncio.sleep(poll_seconds)
        remaining = unstarted_cases(database)
    started = time.monotonic() - began
    # Then until their first steps are done too: the work they leave would run during the
    # next round (whichever system's), not in this round's drain.
    unopened = unopened_cases(database)
    while unopened and time.monotonic() - began < deadline_seconds:
        await asyncio.sleep(poll_seconds)
        unopened = unopened_cases(database)
    return Drain(left, started, drained=not remaining,
                 opened_seconds=time.monotonic() - began, opened=not unopened)


async def workflows_started(suite: EmbeddedSuite, *, expected: int,
                            deadline_seconds: float) -> tuple[int, float]:
    """ComplaintWorkflow runs Temporal holds, waited for until ``expected`` or the deadline."""
    client = await connect(suite.address("temporal"),
                           security=TemporalSecurity.embedded(suite.pki_dir))
    began = time.monotonic()
    query = f'WorkflowType = "{COMPLAINT_WORKFLOW}"'
    while True:
        counted = (await client.count_workflows(query)).count
        waited = time.monotonic() - began
        if counted >= expected or waited > deadline_seconds:
            return counted, waited
        await asyncio.sleep(2)


# ---- Open311 -------------------------------------------------------------------------------

def open311_port(suite: EmbeddedSuite) -> int | None:
    port = suite.environment.get("GOVHALL_COMPLAINTS_OPEN311_PORT")
    return int(port) if port else None


async def post_open311(suite: EmbeddedSuite, pushes: Sequence[Push], *, concurrency: int,
                       figures: BurstFigures) -> None:
    """Each push as the spec's form-encoded ``POST requests`` with its platform's api key."""
    import httpx  # the façade's client side; only this part of the bench needs it

    port = open311_port(suite)
    keys = json.loads((suite.var_dir / "open311" / "api-keys.json").read_text())
    system_platform = {system: platform for platform, system in PLATFORM_SYSTEMS.items()}
    url = f"https://127.0.0.1:{port}/open311/v2/requests.json"
    queue: asyncio.Queue[Push] = asyncio.Queue()
    for push in pushes:
        queue.put_nowait(push)
    async with httpx.AsyncClient(verify=str(ca_cert_path(suite.pki_dir)),
                                 timeout=60) as client:
        async def poster() -> None:
            while True:
                try:
                    push = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                request = push.request
                form = {"api_key": keys[system_platform[push.system]],
                        "service_code": request.category_code,
                        "attribute[kind]": OPEN311_KINDS[request.kind],
                        "attribute[external_id]": request.external_id,
                        "description": request.content,
                        "lat": str(request.location.latitude),
                        "long": str(request.location.longitude),
                        "first_name": request.complainant_name,
                        "phone": request.complainant_phone}
                began = time.perf_counter()
                try:
                    reply = await client.post(url, data=form)
                except httpx.HTTPError as error:
                    figures.failures[describe_failure(error)] += 1
                    continue
                if reply.status_code >= 300:
                    figures.failures[f"HTTP {reply.status_code}: {reply.text[:200]}"] += 1
                    continue
                figures.histogram.record_value(
                    max(1, round((time.perf_counter() - began) * 1_000_000)))
                figures.accepted += 1

        began = time.perf_counter()
        await asyncio.gather(*(poster() for _ in range(concurrency)))
        figures.wall_seconds = time.perf_counter() - began


# ---- the run -------------------------------------------------------------------------------

def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.complaints",
        description="A burst of platform pushes into govhall's complaints service over gRPC "
                    "(and Open311), beside a bare handler that only inserts the row.")
    parser.add_argument("--pushes", type=_positive, default=10_000,
                        help="gRPC pushes per system and round (default 10000)")
    parser.add_argument("--duplicates", type=float, default=0.1,
                        help="share of the pushes that repeat an earlier one (default 0.1)")
    parser.add_argument("--open311", type=int, default=1_000,
                        help="Open311 POSTs after the gRPC rounds; 0 for none (default 1000)")
    parser.add_argument("--concurrency", type=_positive, default=32,
                        help="calls in flight at once (default 32)")
    parser.add_argument("--repeat", type=_positive, default=1,
                        help="rounds of both systems, alternated ABBA (default 1)")
    parser.add_argument("--warmup", type=int, default=100,
                        help="pushes per system before the first round, not counted")
    parser.add_argument("--start-deadline", type=float, default=1800.0,
                        help="seconds to wait for the outbox to start every workflow")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--keep", action="store_true", help="keep the var dir")
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _line(figures: BurstFigures) -> str:
    failed = sum(figures.failures.values())
    return (f"  round {figures.round_number}  {figures.system:<8} "
            f"{figures.rate:9.1f}/s  p50 {figures.percentile_ms(50):7.1f} ms  "
            f"p99 {figures.percentile_ms(99):7.1f} ms  new {figures.accepted:6d}  "
            f"re-pushed {figures.replayed:5d}  failed {failed}")


async def measure(options: argparse.Namespace, var_dir: Path) -> int:
    suite = EmbeddedSuite(var_dir)
    print(f"starting the suite in {var_dir} ...", flush=True)
    print(f"suite ready in {suite.start():.1f} s", flush=True)
    bare = BareServer(suite.pki_dir, var_dir)
    channels: list[grpc.aio.Channel] = []
    problems: list[str] = []
    try:
        stubs: dict[str, dict[str, Any]] = {GOVHALL: {}, BARE: {}}
        for system in PLATFORM_SYSTEMS.values():
            for name, address in ((GOVHALL, suite.address("complaints")),
                                  (BARE, bare.address)):
                channel = secure_channel(address, pki_dir=suite.pki_dir, system=system)
                channels.append(channel)
                stubs[name][system] = complaints_pb2_grpc.ComplaintsServiceStub(channel)
        database = var_dir / "db" / "complaints.sqlite3"

        async def drain(figures: BurstFigures, cases: int) -> None:
            drained = await wait_for_outbox(database, deadline_seconds=options.start_deadline)
            if figures.round_number:
                print(f"           outbox   {drained.left} workflows left to start, started "
                      f"in {drained.seconds:.1f} s; the round's {cases} started at "
                      f"{drained.rate(cases, figures.wall_seconds):.1f} workflows/s; "
                      f"every case opened {drained.opened_seconds:.1f} s after the round",
                      flush=True)
            if not drained.drained:
                problems.append(f"the outbox had not started every workflow "
                                f"{options.start_deadline:.0f} s after round "
                                f"{figures.round_number}")
            elif not drained.opened:
                problems.append(f"not every case was opened {options.start_deadline:.0f} s "
                                f"after round {figures.round_number}")

        any_stub = stubs[GOVHALL]["hotline-12345"]
        categories = [category.code for category in (await any_stub.ListCategories(
            complaints_pb2.ListCategoriesRequest(page_size=500))).categories]
        unique = 0
        bare_warmed = 0
        if options.warmup:
            warmup = burst(pushes=options.warmup, duplicates=0.0, categories=categories,
                           seed=options.seed, tag=f"warm-{uuid.uuid4().hex[:6]}")
            for system in (GOVHALL, BARE):
                await push_all(stubs[system], warmup, concurrency=options.concurrency,
                               figures=BurstFigures(system, 0))
                if system == GOVHALL:
                    await drain(BurstFigures(system, 0), len(warmup))
            unique += len(warmup)
            bare_warmed = len(warmup)
        unique_grpc_per_round = 0
        runs: list[BurstFigures] = []
        for round_number in range(1, options.repeat + 1):
            tag = f"{round_number}-{uuid.uuid4().hex[:6]}"
            pushes = burst(pushes=options.pushes, duplicates=options.duplicates,
                           categories=categories, seed=options.seed + round_number, tag=tag)
            unique_grpc_per_round = sum(not push.duplicate for push in pushes)
            unique += unique_grpc_per_round
            order = (GOVHALL, BARE) if round_number % 2 else (BARE, GOVHALL)
            for system in order:
                figures = BurstFigures(system, round_number)
                await push_all(stubs[system], pushes, concurrency=options.concurrency,
                               figures=figures)
                runs.append(figures)
                print(_line(figures), flush=True)
                if system == GOVHALL:
                    await drain(figures, figures.accepted)
        open311: BurstFigures | None = None
        if options.open311 and open311_port(suite) is not None:
            pushes = burst(pushes=options.open311, duplicates=0.0, categories=categories,
                           seed=options.seed, tag=f"o311-{uuid.uuid4().hex[:6]}")
            open311 = BurstFigures(OPEN311, 1)
            await post_open311(suite, pushes, concurrency=options.concurrency,
                               figures=open311)
            unique += open311.accepted
            print(_line(open311), flush=True)
        elif options.open311:
            problems.append("the suite has no Open311 façade: no Open311 pushes were made")

        ratios = [govhall.rate / baseline.rate
                  for govhall in runs if govhall.system == GOVHALL
                  for baseline in runs
                  if baseline.system == BARE and baseline.round_number == govhall.round_number
                  and baseline.rate > 0]
        print()
        print(f"govhall / bare, accepted pushes per second: rounds "
              f"{', '.join(f'{r:.2f}' for r in ratios)}; median {median(ratios):.2f} "
              f"(aim ≥ {AIM}: {'met' if median(ratios) >= AIM else 'NOT met'})")
        for system in (GOVHALL, BARE):
            mine = [run for run in runs if run.system == system]
            print(f"  {system:<8} median {median([r.rate for r in mine]):.1f}/s, "
                  f"median p99 {median([r.percentile_ms(99) for r in mine]):.1f} ms")
        if open311 is not None:
            print(f"  {OPEN311:<8} {open311.rate:.1f}/s, p99 {open311.percentile_ms(99):.1f} ms "
                  f"(one round, after the gRPC rounds)")

        failures = Counter[str]()
        for run in [*runs, *([open311] if open311 else [])]:
            failures.update(run.failures)
        for failure, count in failures.most_common(5):
            problems.append(f"{count} × {failure}")

        cases = cases_in_database(var_dir)
        started, waited = await workflows_started(suite, expected=unique,
                                                  deadline_seconds=options.start_deadline)
        bare_rows = bare.rows()
        print()
        print(f"unique pushes {unique}; cases in complaints' database {cases}; "
              f"ComplaintWorkflow runs {started} (all started {waited:.0f} s after the last "
              f"push); bare handler rows {bare_rows}")
        if cases != unique:
            problems.append(f"{unique} unique pushes made {cases} cases")
        if started != unique:
            problems.append(f"{unique} unique pushes have {started} workflows")
        expected_bare = unique_grpc_per_round * options.repeat + bare_warmed
        if bare_rows != expected_bare:
            problems.append(f"the bare handler kept {bare_rows} rows of {expected_bare}")
    finally:
        for channel in channels:
            await channel.close(grace=None)
        bare.stop()
        suite.stop()
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["--serve-bare"]:
        serve_bare(int(arguments[1]), Path(arguments[2]), Path(arguments[3]))
        return 0
    options = parse(arguments)
    var_dir = Path(tempfile.mkdtemp(prefix="govhall-bench-complaints-"))
    try:
        return asyncio.run(measure(options, var_dir))
    finally:
        if options.keep:
            print(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
