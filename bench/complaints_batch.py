"""Micro-benchmark of complaints intake's batch write: microseconds per push by batch size.

    PYTHONPATH=. .venv/bin/python -m bench.complaints_batch [--pushes 3000] [--sizes 1,8,32]

What it times is ``services.complaints.app.cases.submit_complaints`` alone, in this
process, on a fresh SQLite database migrated and holding the sample directory, as the
group commit calls it: the checks' reads, the running numbers, the cases (their
complainants sealed), their events, their audit entries, the commit, and the log line
(JSON as the service writes it, to /dev/null). No gRPC, no
Temporal: what the issue's benchmark measures around it is left out, so that the cost
of the write itself can be compared before and after a change. Each size runs on a
database of its own, after a warm-up batch; the figure is CPU time (process time) per
push, with wall time beside it, since the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from govhall.complaints.v1 import complaints_pb2 as pb
from kernel.db import make_engine
from kernel.fieldcipher import field_cipher
from kernel.identity import Caller
from kernel.logging import configure_logging
from kernel.migrations import upgrade
from services.complaints.api.servicer import submission_from_proto
from services.complaints.app import cases
from services.complaints.app.handlers import load_sample_directory
from services.complaints.db.repository import ComplaintsUnitOfWork
from services.complaints.main import DEFINITION

CALLERS = (Caller("hotline-12345"), Caller("provincial-complaint-portal"))


def _push(index: int, run: str) -> cases.Push:
    return cases.Push(CALLERS[index % 2], submission_from_proto(pb.SubmitComplaintRequest(
        external_id=f"MB-{run}-{index}", kind=pb.COMPLAINT_KIND_COMPLAINT,
        category_code="SC-01", content=f"早餐店使用过期食材（{index}）。",
        complainant_name="测试群众", complainant_phone="199-0000-0001")))


def measure(size: int, pushes: int, directory: Path) -> tuple[float, float]:
    """CPU and wall microseconds per push for batches of ``size``."""
    url = f"sqlite:///{directory / f'complaints-{size}.db'}"
    upgrade(migrations_dir=DEFINITION.migrations_dir, url=url)
    engine = make_engine(url)
    load_sample_directory(uow=ComplaintsUnitOfWork(engine),
                          sample_dir=Path(__file__).resolve().parent.parent / "deploy" / "sample")
    cipher = field_cipher(directory / f"field-{size}.key")

    def writing() -> ComplaintsUnitOfWork:
        return ComplaintsUnitOfWork(engine)

    def run(batch: list[cases.Push]) -> None:
        answers = cases.submit_complaints(uow=writing, cipher=cipher, pushes=batch,
                                          now=datetime.now(UTC))
        failed = [a for a in answers if not isinstance(a, cases.Submitted) or a.replayed]
        if failed:
            raise SystemExit(f"a push was not taken in: {failed[0]!r}")

    run([_push(i, "warm") for i in range(size)])
    batches = [[_push(start + i, "timed") for i in range(size)]
               for start in range(0, pushes - pushes % size, size)]
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in batches:
        run(batch)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    engine.dispose()
    taken = sum(len(b) for b in batches)
    return cpu / taken * 1e6, wall / taken * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pushes", type=int, default=3000)
    parser.add_argument("--sizes", default="1,8,32")
    args = parser.parse_args()
    # The service's own log lines, as it writes them, to nowhere: their cost is counted.
    shown, sys.stdout = sys.stdout, open(os.devnull, "w")  # noqa: SIM115
    try:
        configure_logging(service="complaints")
    finally:
        sys.stdout = shown
    with tempfile.TemporaryDirectory(prefix="govhall-complaints-batch-") as directory:
        for size in (int(s) for s in args.sizes.split(",")):
            cpu, wall = measure(size, args.pushes, Path(directory))
            print(f"batch {size:3d}: {cpu:7.1f} us CPU per push, {wall:7.1f} us wall per push")


if __name__ == "__main__":
    main()
