"""The whole suite for a benchmark, started as `make run` starts it, in a throwaway var dir.

The embedded runner (deploy/local/runner.py) runs as a child process with
free ports on 127.0.0.1 and its own var dir, so a benchmark never touches
the developer's var/ nor a suite already running on the default ports.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from kernel.settings import ROOT

SERVICES = ("intake", "review", "trading", "complaints")
#: The runner's own ports, by the suffix of its GOVHALL_RUNNER_*_PORT setting.
TEMPORAL_PORTS = {"temporal": "TEMPORAL_PORT", "ui": "TEMPORAL_UI_PORT",
                  "http": "TEMPORAL_HTTP_PORT", "metrics": "TEMPORAL_METRICS_PORT",
                  "codec": "CODEC_PORT"}
READY_LINE = "ready in"


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now; all held open together so they differ."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for held in sockets:
            held.bind(("127.0.0.1", 0))
        return [held.getsockname()[1] for held in sockets]
    finally:
        for held in sockets:
            held.close()


def runner_environment(var_dir: Path, ports: dict[str, int]) -> dict[str, str]:
    """This process's environment without any GOVHALL_ setting, plus the suite's own."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GOVHALL_")}
    environment["GOVHALL_RUNNER_VAR_DIR"] = str(var_dir)
    for name, suffix in TEMPORAL_PORTS.items():
        environment[f"GOVHALL_RUNNER_{suffix}"] = str(ports[name])
    for service in SERVICES:
        environment[f"GOVHALL_{service.upper()}_PORT"] = str(ports[service])
    return environment


@dataclass
class EmbeddedSuite:
    """One runner process: start() until it prints its ready line, stop() with Ctrl-C."""

    var_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    def start(self, *, timeout_seconds: float = 180.0) -> None:
        names = [*TEMPORAL_PORTS, *SERVICES]
        self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "deploy.local.runner"], cwd=ROOT,
            env=runner_environment(self.var_dir, self.ports),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self.reader.start()
        # The reader also sets the event when the runner exits, so a failed start is seen
        # at once instead of after the whole timeout.
        if not self.ready.wait(timeout_seconds) or not self._ready_line_seen():
            raise RuntimeError(f"the suite did not become ready; the runner said:\n"
                               f"{self.output[-4000:]}\n(logs under {self.var_dir / 'log'})")

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)
            if line.startswith(READY_LINE):
                self.ready.set()
        self.ready.set()

    def _ready_line_seen(self) -> bool:
        return any(line.startswith(READY_LINE) for line in self.lines)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int | None:
        """Ctrl-C to the runner, which stops services, worker and Temporal in order."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.reader is not None:
            self.reader.join(timeout=10)
        return self.process.returncode

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    @property
    def pki_dir(self) -> Path:
        return self.var_dir / "pki"

    @property
    def startup_seconds(self) -> str:
        """The runner's own figure, from its ready line ("ready in 12.3s")."""
        for line in self.lines:
            if line.startswith(READY_LINE):
                return line[len(READY_LINE):].strip()
        return "?"
