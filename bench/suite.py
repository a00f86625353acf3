"""The whole suite for a benchmark, started as `make run` starts it, in a throwaway var dir.

The embedded runner (deploy/local/runner.py) runs as a child process with
free ports on 127.0.0.1 and its own var dir (deploy/local/processes.py), so a
benchmark never touches the developer's var/ nor a suite already running on
the default ports.
"""

from __future__ import annotations

from pathlib import Path

from deploy.local import processes
from kernel.settings import ROOT

runner_environment = processes.runner_environment


class EmbeddedSuite(processes.RunnerProcess):
    """One runner process on free ports: start() until it prints its ready line, stop() with
    Ctrl-C."""

    def __init__(self, var_dir: Path) -> None:
        names = [*processes.RUNNER_PORTS, *processes.SERVICES, *processes.FACADE_PORTS]
        ports = dict(zip(names, processes.free_ports(len(names)), strict=True))
        super().__init__(runner_environment(var_dir, ports), cwd=ROOT)
        self.var_dir = var_dir
        self.ports = ports

    def start(self, *, timeout_seconds: float = 180.0) -> float:
        try:
            return super().start(timeout_seconds=timeout_seconds)
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n(logs under {self.var_dir / 'log'})") from error

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    @property
    def pki_dir(self) -> Path:
        return self.var_dir / "pki"
