"""The approval benchmark's own arithmetic: figures, the table, CPU accounting, the baseline."""

from __future__ import annotations

import argparse
import asyncio
import math
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from bench import cpu
from bench.approval import parse, report, run_cases
from bench.baseline import ACTIVITIES, ACTIVITIES_PER_CASE, UPDATES_PER_CASE
from bench.figures import RunFigures, cpu_table, describe_failure, failure_report, ratio, table
from bench.shape import Shape, mismatch, shape_of
from bench.suite import runner_environment


def _figures(system: str, round_number: int, latencies: list[float], wall: float,
             failures: int = 0) -> RunFigures:
    figures = RunFigures(system, round_number)
    for seconds in latencies:
        figures.record(seconds)
    for _ in range(failures):
        figures.fail(RuntimeError("the case did not seal"))
    figures.wall_seconds = wall
    return figures


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


def test_the_ratio_is_govhall_over_baseline_and_zero_without_a_baseline() -> None:
    govhall = _figures("govhall", 1, [0.1] * 7, wall=1.0)
    baseline = _figures("baseline", 1, [0.1] * 10, wall=1.0)
    assert ratio(govhall, baseline) == pytest.approx(0.7)
    assert ratio(govhall, _figures("baseline", 1, [], wall=1.0)) == 0.0


def test_the_table_has_a_line_per_run_with_its_figures() -> None:
    lines = table([_figures("govhall", 1, [0.25] * 4, wall=2.0, failures=1)]).splitlines()
    assert lines[0].split() == ["round", "system", "cases", "failures", "wall", "s",
                                "cases/s", "p50", "ms", "p99", "ms"]
    assert lines[1].split()[:6] == ["1", "govhall", "5", "1", "2.00", "2.00"]


def test_failures_are_grouped_and_shown() -> None:
    figures = _figures("govhall", 2, [0.1], wall=1.0, failures=3)
    shown = failure_report([figures])
    assert "round 2 govhall: 3 failed cases" in shown
    assert "3 × RuntimeError: the case did not seal" in shown
    assert failure_report([_figures("baseline", 1, [0.1], wall=1.0)]) == ""


def test_a_failure_names_its_cause() -> None:
    try:
        try:
            raise TimeoutError("no answer")
        except TimeoutError as inner:
            raise RuntimeError("decision lost") from inner
    except RuntimeError as error:
        described = describe_failure(error)
    assert described == ("RuntimeError: decision lost (caused by TimeoutError: no answer)")


def _arguments(repeat: int) -> argparse.Namespace:
    return parse(["--repeat", str(repeat)])


def test_one_round_prints_the_ratio_and_the_aim() -> None:
    runs = [_figures("govhall", 1, [0.1] * 8, wall=1.0),
            _figures("baseline", 1, [0.1] * 10, wall=1.0)]
    printed = report(runs, _arguments(1).repeat)
    assert "ratio (govhall / baseline throughput): 0.80" in printed
    assert "aim: ratio >= 0.70: met (0.800)" in printed


def test_several_rounds_print_the_median_ratio() -> None:
    runs = []
    for round_number, govhall_cases in ((1, 5), (2, 9), (3, 6)):
        runs += [_figures("govhall", round_number, [0.1] * govhall_cases, wall=1.0),
                 _figures("baseline", round_number, [0.1] * 10, wall=1.0)]
    printed = report(runs, 3)
    assert "round 2 ratio (govhall / baseline throughput): 0.90" in printed
    assert "median ratio (govhall / baseline throughput): 0.60" in printed
    assert "aim: ratio >= 0.70: NOT met (0.600)" in printed


def test_the_arguments_refuse_zero_cases() -> None:
    with pytest.raises(SystemExit):
        parse(["--cases", "0"])


async def test_run_cases_keeps_to_the_concurrency_and_counts_every_case() -> None:
    in_flight = 0
    most = 0
    calls = 0

    async def one_case() -> str:
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

    figures = await run_cases("baseline", one_case, cases=20, concurrency=3, round_number=1,
                              case_timeout=5.0)
    assert most == 3
    assert figures.cases == 20
    assert figures.failed == 4
    assert figures.succeeded == 16


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


def _event(kind: EventType.ValueType) -> HistoryEvent:
    return HistoryEvent(event_type=kind)


def test_a_shape_counts_activities_updates_and_the_rest_from_the_history() -> None:
    events = [_event(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED),
              *[_event(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)] * 17,
              *[_event(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)] * 3,
              *[_event(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED)] * 3,
              _event(EventType.EVENT_TYPE_TIMER_STARTED),
              *[_event(EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)] * 2,
              *[_event(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)] * 9]
    assert shape_of(events) == Shape(activities=17, updates=3, timers=1,
                                     search_attribute_upserts=2, workflow_tasks=9, events=36)


def test_the_baseline_must_match_govhall_in_activities_and_updates_only() -> None:
    govhall = Shape(17, 3, timers=1, search_attribute_upserts=9, workflow_tasks=12, events=120)
    assert mismatch(govhall, Shape(17, 3, 0, 0, 10, 90)) == ""
    assert mismatch(govhall, Shape(15, 3, 0, 0, 10, 90)) == (
        "activities: govhall 17, baseline 15")
    assert "updates: govhall 3, baseline 2" in mismatch(govhall, Shape(17, 2, 0, 0, 10, 90))


def test_the_baseline_declares_what_its_docstring_counts() -> None:
    assert (ACTIVITIES_PER_CASE, UPDATES_PER_CASE, len(ACTIVITIES)) == (17, 3, 7)
