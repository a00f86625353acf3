"""deploy/local/processes.py with real child processes: exits reported, stops escalated."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import grpc
import pytest

from deploy.local import processes
from deploy.local.runner import RunnerSettings, Suite
from kernel.pki import ensure_pki
from services.complaints.settings import ComplaintsSettings
from services.trading.settings import TradingSettings

IGNORES_SIGTERM = ("import signal, time\n"
                   "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                   "print('ignoring SIGTERM', flush=True)\n"
                   "time.sleep(60)\n")


def _until_logged(child: processes.Child, text: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while text not in child.log_tail():
        child.check()
        assert time.monotonic() < deadline, f"{child.name} never logged {text!r}"
        time.sleep(0.05)


def test_a_child_that_exits_is_reported_with_the_end_of_its_log(tmp_path: Path) -> None:
    child = processes.spawn("crasher", [sys.executable, "-c", "print('no database'); exit(3)"],
                            environment={}, log_dir=tmp_path)
    child.process.wait(timeout=20)
    with pytest.raises(processes.ProcessExited, match=r"crasher exited with 3(.|\n)*no database"):
        child.check()
    child.log.close()


def test_stop_terminates_and_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    polite = processes.spawn("polite", [sys.executable, "-c", "import time; time.sleep(60)"],
                             environment={}, log_dir=tmp_path)
    stubborn = processes.spawn("stubborn", [sys.executable, "-c", IGNORES_SIGTERM],
                               environment={}, log_dir=tmp_path)
    _until_logged(stubborn, "ignoring SIGTERM")
    processes.stop([polite, stubborn], timeout=1.0)
    # Killed, not waited out: the stubborn child would have exited 0 after its minute.
    assert polite.process.returncode == -signal.SIGTERM
    assert stubborn.process.returncode == -signal.SIGKILL
    assert polite.log.closed and stubborn.log.closed


def test_run_to_end_fails_with_the_log_of_a_failed_step(tmp_path: Path) -> None:
    processes.run_to_end("fine", [sys.executable, "-c", "print('migrated')"], environment={},
                         log_dir=tmp_path, timeout=20)
    assert "migrated" in (tmp_path / "fine.log").read_text()
    with pytest.raises(processes.ProcessExited, match=r"broken failed with 2(.|\n)*no such"):
        processes.run_to_end("broken", [sys.executable, "-c", "print('no such table'); exit(2)"],
                             environment={}, log_dir=tmp_path, timeout=20)


def test_the_runners_environment_has_only_the_suites_own_settings(tmp_path: Path) -> None:
    ports = dict(zip([*processes.RUNNER_PORTS, *processes.SERVICES, *processes.FACADE_PORTS],
                     range(1, 11), strict=True))
    environment = processes.runner_environment(
        tmp_path, ports, base={"PATH": "/bin", "GOVHALL_INTAKE_DATABASE_URL": "postgresql://x"})
    assert environment["PATH"] == "/bin"
    assert "GOVHALL_INTAKE_DATABASE_URL" not in environment
    assert environment["GOVHALL_RUNNER_VAR_DIR"] == str(tmp_path)
    assert environment["GOVHALL_RUNNER_TEMPORAL_UI_PORT"] == "2"
    assert environment["GOVHALL_RUNNER_CODEC_PORT"] == "5"
    assert environment["GOVHALL_COMPLAINTS_PORT"] == "9"
    assert environment["GOVHALL_COMPLAINTS_OPEN311_PORT"] == "10"
    without_facades = processes.runner_environment(
        tmp_path, {k: v for k, v in ports.items() if k not in processes.FACADE_PORTS}, base={})
    assert without_facades["GOVHALL_COMPLAINTS_OPEN311_PORT"] == "0"


def test_a_service_keeps_all_its_state_under_the_var_dir(tmp_path: Path) -> None:
    settings = processes.service_environment("review", var_dir=tmp_path,
                                             temporal_address="127.0.0.1:1", namespace="ns",
                                             port=5)
    assert settings == {
        "GOVHALL_REVIEW_PKI_DIR": str(tmp_path / "pki"),
        "GOVHALL_REVIEW_DATABASE_URL": f"sqlite:///{tmp_path / 'db' / 'review.sqlite3'}",
        "GOVHALL_REVIEW_TEMPORAL_ADDRESS": "127.0.0.1:1",
        "GOVHALL_REVIEW_TEMPORAL_NAMESPACE": "ns",
        "GOVHALL_REVIEW_PORT": "5",
    }


def test_the_worker_finds_the_payload_keys_under_the_var_dir(tmp_path: Path) -> None:
    settings = processes.worker_environment(var_dir=tmp_path, temporal_address="127.0.0.1:1",
                                            namespace="ns", review_address="127.0.0.1:2")
    assert settings == {
        "GOVHALL_WORKER_TEMPORAL_ADDRESS": "127.0.0.1:1",
        "GOVHALL_WORKER_TEMPORAL_NAMESPACE": "ns",
        "GOVHALL_WORKER_PKI_DIR": str(tmp_path / "pki"),
        "GOVHALL_WORKER_REVIEW_ADDRESS": "127.0.0.1:2",
    }


def test_the_runner_points_complaints_at_its_intake_and_trading(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("GOVHALL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GOVHALL_INTAKE_PORT", "50061")
    monkeypatch.setenv("GOVHALL_TRADING_PORT", "50063")
    suite = Suite(RunnerSettings(var_dir=tmp_path))
    complaints = dict(suite.service_settings())["complaints"]
    assert isinstance(complaints, ComplaintsSettings)
    assert complaints.intake_address == "127.0.0.1:50061"
    assert complaints.trading_address == "127.0.0.1:50063"
    # Everything on one machine: a platform's receiver beside it may be plain http.
    assert complaints.webhook_allow_loopback is True
    assert ComplaintsSettings().webhook_allow_loopback is False


def test_the_runner_points_complaints_and_trading_at_its_review_for_holidays(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("GOVHALL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GOVHALL_REVIEW_PORT", "50062")
    suite = Suite(RunnerSettings(var_dir=tmp_path))
    settings = dict(suite.service_settings())
    complaints, trading = settings["complaints"], settings["trading"]
    assert isinstance(complaints, ComplaintsSettings) and isinstance(trading, TradingSettings)
    assert complaints.review_address == trading.review_address == "127.0.0.1:50062"
    assert (complaints.calling_system, trading.calling_system) == ("complaints-service",
                                                                   "trading-service")


def test_the_codec_server_serves_the_keys_under_the_var_dir_to_the_ui(tmp_path: Path) -> None:
    settings = processes.codec_server_environment(
        var_dir=tmp_path, host="127.0.0.1", port=7, ui_origins=["http://127.0.0.1:8"])
    assert settings == {
        "GOVHALL_CODEC_HOST": "127.0.0.1",
        "GOVHALL_CODEC_PORT": "7",
        "GOVHALL_CODEC_PKI_DIR": str(tmp_path / "pki"),
        "GOVHALL_CODEC_UI_ORIGINS": '["http://127.0.0.1:8"]',
    }
    assert "GOVHALL_CODEC_UI_ORIGINS" not in processes.codec_server_environment(
        var_dir=tmp_path, host="127.0.0.1", port=7)


async def test_waiting_for_health_stops_when_the_child_has_died(tmp_path: Path) -> None:
    child = processes.spawn("dead", [sys.executable, "-c", "exit(1)"], environment={},
                            log_dir=tmp_path)
    child.process.wait(timeout=20)
    port = processes.free_ports(1)[0]
    with pytest.raises(processes.ProcessExited, match="dead exited with 1"):
        await processes.until_healthy(f"127.0.0.1:{port}", grpc.local_channel_credentials(),
                                      deadline=time.monotonic() + 60, check=child.check,
                                      name="dead")
    child.log.close()


async def test_waiting_for_health_ends_at_the_deadline(tmp_path: Path) -> None:
    port = processes.free_ports(1)[0]
    with pytest.raises(TimeoutError, match="silent did not become healthy"):
        await processes.until_healthy(f"127.0.0.1:{port}", grpc.local_channel_credentials(),
                                      deadline=time.monotonic() + 0.5, check=lambda: None,
                                      name="silent")


async def test_waiting_for_the_codec_server_stops_when_it_has_died(tmp_path: Path) -> None:
    ensure_pki(tmp_path / "pki")
    child = processes.spawn("codec-server", [sys.executable, "-c", "exit(3)"], environment={},
                            log_dir=tmp_path)
    child.process.wait(timeout=20)
    port = processes.free_ports(1)[0]
    with pytest.raises(processes.ProcessExited, match="codec-server exited with 3"):
        await processes.until_codec_server_answers(
            f"https://127.0.0.1:{port}", tmp_path / "pki", deadline=time.monotonic() + 60,
            check=child.check)
    child.log.close()
