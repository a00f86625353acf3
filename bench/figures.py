"""The figures of a benchmark run: latencies in an HDR histogram, throughput, the table.

Latencies are recorded in microseconds (1 µs to 10 minutes, 3 significant
digits) and printed in milliseconds. Throughput counts the cases that went
through; a failed case is counted and shown, never folded into the rate.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from bench.cpu import BENCH, CpuUse

LOWEST_MICROS = 1
HIGHEST_MICROS = 600_000_000
SIGNIFICANT_DIGITS = 3


def latency_histogram() -> Any:
    return HdrHistogram(LOWEST_MICROS, HIGHEST_MICROS, SIGNIFICANT_DIGITS)


@dataclass
class RunFigures:
    """One measured run of one system: N cases at a concurrency."""

    system: str
    round_number: int
    histogram: Any = field(default_factory=latency_histogram)
    succeeded: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    wall_seconds: float = 0.0
    cpu: CpuUse = field(default_factory=CpuUse)

    def record(self, seconds: float) -> None:
        self.succeeded += 1
        micros = min(max(round(seconds * 1_000_000), LOWEST_MICROS), HIGHEST_MICROS)
        self.histogram.record_value(micros)

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
        if not self.succeeded:
            return float("nan")
        return float(self.histogram.get_value_at_percentile(percentile)) / 1000.0


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


def ratio(govhall: RunFigures, baseline: RunFigures) -> float:
    """govhall's throughput over the baseline's; 0 when the baseline did nothing."""
    return govhall.throughput / baseline.throughput if baseline.throughput > 0 else 0.0


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


HEADER = ("round", "system", "cases", "failures", "wall s", "cases/s", "p50 ms", "p99 ms")


def table(runs: list[RunFigures]) -> str:
    """A plain fixed-width table, one line per run."""
    rows = [HEADER] + [
        (str(run.round_number), run.system, str(run.cases), str(run.failed),
         f"{run.wall_seconds:.2f}", f"{run.throughput:.2f}", f"{run.percentile_ms(50):.1f}",
         f"{run.percentile_ms(99):.1f}")
        for run in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = []
    for row in rows:
        cells = [row[0].rjust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True)]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def failure_report(runs: list[RunFigures], *, limit: int = 5) -> str:
    """The commonest failures of each run that had any; empty when none failed."""
    lines = []
    for run in runs:
        if not run.failures:
            continue
        lines.append(f"round {run.round_number} {run.system}: {run.failed} failed cases")
        for description, count in run.failures.most_common(limit):
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
        rows.append((str(run.round_number), run.system,
                     *(f"{per_case.get(role, 0.0):.0f}" for role in CPU_ROLES),
                     f"{rest:.0f}", f"{sum(per_case.values()):.0f}", f"{busy:.0f}%",
                     f"{max(busy - ours, 0.0):.0f}%"))
    if len(rows) == 1:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["CPU ms per case, by process (machine busy: all CPUs, everyone's processes; "
             "not ours: the part this suite did not use)"]
    for row in rows:
        cells = [row[0].rjust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True)]
        lines.append("  ".join(cells))
    return "\n".join(lines)
