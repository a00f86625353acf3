"""Where a run's CPU went: the suite's processes, this process, and the whole machine.

On a small shared machine the chain is CPU-bound, so CPU seconds per case
by process say what dominates better than wall time does. Read from
/proc (Linux); elsewhere every figure is empty and the benchmark still runs.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
#: The suite's processes, by what their command line runs.
ROLES = (("temporal", "start-dev"), ("intake", "services.intake.main"),
         ("review", "services.review.main"), ("trading", "services.trading.main"),
         ("complaints", "services.complaints.main"), ("worker", "workflows.worker"),
         ("runner", "deploy.local.runner"))
BENCH = "bench"


def _ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100


def process_seconds(stat_line: str, ticks: int) -> float:
    """User + system CPU seconds from a /proc/<pid>/stat line."""
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    fields = stat_line[stat_line.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / ticks


def machine_seconds(stat_text: str, ticks: int) -> tuple[float, float]:
    """(busy, total) CPU seconds of all CPUs since boot, from /proc/stat."""
    values = [int(v) for v in stat_text.splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / ticks, total / ticks


def role_of(command_line: str) -> str:
    for role, marker in ROLES:
        if marker in command_line:
            return role
    return "other"


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in (PROC / str(pid) / "task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _descendants(pid: int) -> list[int]:
    pending, seen = [pid], []
    while pending:
        current = pending.pop()
        seen.append(current)
        pending += _children(current)
    return seen


@dataclass
class CpuSample:
    """CPU seconds so far by role, and the machine's busy and total seconds."""

    by_role: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0
    machine_total: float = 0.0


def sample(runner_pid: int | None) -> CpuSample:
    taken = CpuSample()
    if not PROC.is_dir():
        return taken
    ticks = _ticks()
    pids = _descendants(runner_pid) if runner_pid is not None else []
    for pid in [*pids, os.getpid()]:
        try:
            command = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            seconds = process_seconds((PROC / str(pid) / "stat").read_text(), ticks)
        except (OSError, ValueError, IndexError):
            continue
        role = BENCH if pid == os.getpid() else role_of(command)
        taken.by_role[role] = taken.by_role.get(role, 0.0) + seconds
    with contextlib.suppress(OSError, ValueError, IndexError):
        taken.machine_busy, taken.machine_total = machine_seconds(
            (PROC / "stat").read_text(), ticks)
    return taken


@dataclass
class CpuUse:
    """CPU used during one run: by role, and by the whole machine (everyone's processes)."""

    by_role: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0
    machine_total: float = 0.0

    @property
    def suite(self) -> float:
        return sum(self.by_role.values())


def used(before: CpuSample, after: CpuSample) -> CpuUse:
    """The CPU spent between two samples (a process that ended in between is left out)."""
    return CpuUse({role: after.by_role[role] - before.by_role.get(role, 0.0)
                   for role in after.by_role},
                  after.machine_busy - before.machine_busy,
                  after.machine_total - before.machine_total)
