"""The figures of a benchmark run: latencies in HDR histograms, throughput, the tables.

Latencies are recorded in microseconds (1 µs to 10 minutes, 3 significant
digits) and printed in milliseconds: one histogram for whole cases, and one
per call (an RPC of govhall, a start or update of a baseline). Throughput
counts the cases that went through; a failed case is counted and shown,
never folded into the rate.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from bench.cpu import BENCH, CpuUse

LOWEST_MICROS = 1
HIGHEST_MICROS = 600_000_000
SIGNIFICANT_DIGITS = 3


def latency_histogram() -> Any:
    return HdrHistogram(LOWEST_MICROS, HIGHEST_MICROS, SIGNIFICANT_DIGITS)


def _micros(seconds: float) -> int:
    return min(max(round(seconds * 1_000_000), LOWEST_MICROS), HIGHEST_MICROS)


def _percentile_ms(histogram: Any, percentile: float) -> float:
    if not histogram.get_total_count():
        return float("nan")
    return float(histogram.get_value_at_percentile(percentile)) / 1000.0


#: The round number of the concurrency-1 latency pass, which is not a throughput round.
LATENCY_PASS = 0


@dataclass
class RunFigures:
    """One measured run of one system: N cases at a concurrency."""

    system: str
    round_number: int
    concurrency: int = 1
    histogram: Any = field(default_factory=latency_histogram)
    #: Each call's latency, by the call's name ("SubmitApplication", "DecideCase review", ...).
    calls: dict[str, Any] = field(default_factory=dict)
    succeeded: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    #: Workflows of cases that went through but did not complete afterwards (not in failures).
    unfinished: Counter[str] = field(default_factory=Counter)
    wall_seconds: float = 0.0
    #: Seconds after the run until every workflow it started had completed (not measured).
    drain_seconds: float = 0.0
    cpu: CpuUse = field(default_factory=CpuUse)

    def record(self, seconds: float) -> None:
        self.succeeded += 1
        self.histogram.record_value(_micros(seconds))

    def record_call(self, name: str, seconds: float) -> None:
        self.calls.setdefault(name, latency_histogram()).record_value(_micros(seconds))

    def fail(self, error: BaseException) -> None:
        self.failures[describe_failure(error)] += 1

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def cases(self) -> int:
        return self.succeeded + self.failed

    @property
    def throughput(self) -> float:
        """Cases that went through per second of wall time."""
        return self.succeeded / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def percentile_ms(self, percentile: float) -> float:
        return _percentile_ms(self.histogram, percentile)


@dataclass
class CallFigures:
    """One call's latencies, merged over runs: how many, p50 and p99."""

    system: str
    call: str
    concurrency: int
    count: int
    p50_ms: float
    p99_ms: float


def call_figures(runs: list[RunFigures]) -> list[CallFigures]:
    """Each (system, concurrency, call)'s latencies over all the given runs, in first-seen order."""
    merged: dict[tuple[str, int, str], Any] = {}
    for run in runs:
        for call, histogram in run.calls.items():
            key = (run.system, run.concurrency, call)
            if key not in merged:
                merged[key] = latency_histogram()
            merged[key].add(histogram)
    return [CallFigures(system, call, concurrency, histogram.get_total_count(),
                        _percentile_ms(histogram, 50), _percentile_ms(histogram, 99))
            for (system, concurrency, call), histogram in merged.items()]


def describe_failure(error: BaseException) -> str:
    """A failure's kind and first line, short enough to count alike failures together."""
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    details = getattr(error, "details", None)
    if callable(details):  # a grpc.aio.AioRpcError: its status and message say what happened
        code = getattr(error, "code", None)
        first = f"{code() if callable(code) else ''} {details()}".strip()
    cause = error.__cause__
    if cause is not None and cause is not error:
        first += f" (caused by {type(cause).__name__}: {str(cause).strip()[:120]})"
    return f"{type(error).__name__}: {first[:240]}"


def ratio(system: RunFigures, baseline: RunFigures) -> float:
    """A system's throughput over a baseline's; 0 when the baseline did nothing."""
    return system.throughput / baseline.throughput if baseline.throughput > 0 else 0.0


def round_ratios(runs: list[RunFigures], system: str, baseline: str) -> list[float]:
    """``system`` / ``baseline`` throughput in each throughput round both ran, in round order."""
    rounds = sorted({run.round_number for run in runs if run.round_number != LATENCY_PASS})
    found: list[float] = []
    for number in rounds:
        pair = {run.system: run for run in runs if run.round_number == number}
        if system in pair and baseline in pair:
            found.append(ratio(pair[system], pair[baseline]))
    return found


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(value: float, aim: float, *, at_most: bool = False) -> str:
    """Whether ``value`` is at least ``aim`` (at most, for latencies); NaN never meets it."""
    met = value <= aim if at_most else value >= aim
    return "met" if met else "NOT met"


def _columns(rows: Sequence[Sequence[str]], left: int = 2) -> list[str]:
    """Fixed-width lines: the first column and those from ``left`` on aligned right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].rjust(widths[0])]
        cells += [cell.ljust(width) for cell, width in zip(row[1:left], widths[1:left],
                                                             strict=True)]
        cells += [cell.rjust(width) for cell, width in zip(row[left:], widths[left:],
                                                             strict=True)]
        lines.append("  ".join(cells).rstrip())
    return lines


HEADER = ("round", "system", "conc", "cases", "failures", "wall s", "cases/s", "p50 ms",
          "p99 ms")


def round_label(round_number: int) -> str:
    return "c1" if round_number == LATENCY_PASS else str(round_number)


def table(runs: list[RunFigures]) -> str:
    """A plain fixed-width table, one line per run (the latency pass's round is "c1")."""
    rows = [HEADER] + [
        (round_label(run.round_number), run.system, str(run.concurrency), str(run.cases),
         str(run.failed), f"{run.wall_seconds:.2f}", f"{run.throughput:.2f}",
         f"{run.percentile_ms(50):.1f}", f"{run.percentile_ms(99):.1f}")
        for run in runs]
    return "\n".join(_columns(rows))


CALL_HEADER = ("conc", "system", "call", "calls", "p50 ms", "p99 ms")


def call_table(calls: list[CallFigures]) -> str:
    """Per-call latencies, one line per (concurrency, system, call)."""
    rows = [CALL_HEADER] + [
        (str(c.concurrency), c.system, c.call, str(c.count), f"{c.p50_ms:.1f}",
         f"{c.p99_ms:.1f}") for c in calls]
    return "\n".join(_columns(rows, left=3))


def failure_report(runs: list[RunFigures], *, limit: int = 5) -> str:
    """The commonest failures of each run that had any; empty when none failed."""
    lines = []
    for run in runs:
        label = f"round {round_label(run.round_number)} {run.system}"
        if run.failures:
            lines.append(f"{label}: {run.failed} failed cases")
            for description, count in run.failures.most_common(limit):
                lines.append(f"  {count:>5} × {description}")
        if run.unfinished:
            lines.append(f"{label}: {sum(run.unfinished.values())} workflows of cases that "
                         "went through did not complete")
            for description, count in run.unfinished.most_common(limit):
                lines.append(f"  {count:>5} × {description}")
    return "\n".join(lines)


#: The CPU table's columns: the processes that work during a run, then the idle rest.
CPU_ROLES = ("temporal", "intake", "review", "worker", BENCH)


def cpu_table(runs: list[RunFigures]) -> str:
    """CPU milliseconds per case by process, and how busy the whole machine was."""
    header = ("round", "system", *CPU_ROLES, "rest", "suite", "machine busy", "not ours")
    rows: list[tuple[str, ...]] = [header]
    for run in runs:
        cpu = run.cpu
        if not cpu.by_role or not run.cases:
            continue
        per_case = {role: 1000 * seconds / run.cases for role, seconds in cpu.by_role.items()}
        rest = sum(v for role, v in per_case.items() if role not in CPU_ROLES)
        busy = 100 * cpu.machine_busy / cpu.machine_total if cpu.machine_total else 0.0
        ours = 100 * cpu.suite / cpu.machine_total if cpu.machine_total else 0.0
        rows.append((round_label(run.round_number), run.system,
                     *(f"{per_case.get(role, 0.0):.0f}" for role in CPU_ROLES),
                     f"{rest:.0f}", f"{sum(per_case.values()):.0f}", f"{busy:.0f}%",
                     f"{max(busy - ours, 0.0):.0f}%"))
    if len(rows) == 1:
        return ""
    return "\n".join(["CPU ms per case, by process (machine busy: all CPUs, everyone's processes; "
                      "not ours: the part this suite did not use)", *_columns(rows)])
