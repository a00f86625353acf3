"""The production manifests name real settings, modules and ports."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.local.runner import SERVICES
from workflows.worker import WorkerSettings

K8S = Path(__file__).resolve().parents[3] / "deploy" / "k8s"


def _documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")) if d]


def _containers(document: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = document["spec"]["template"]["spec"]["containers"]
    return containers


def _module_of(command: list[str]) -> str:
    assert command[:2] == ["python", "-m"]
    return command[2]


def test_kustomization_lists_every_manifest() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


@pytest.mark.parametrize(("name", "settings_type"), SERVICES)
def test_each_service_has_a_migration_job_a_deployment_and_a_service(
        name: str, settings_type: Any) -> None:
    kinds = {d["kind"]: d for d in _documents(f"{name}.yaml")}
    assert set(kinds) == {"Job", "Deployment", "Service"}
    port = settings_type().port
    fields = set(settings_type.model_fields)
    prefix = f"GOVHALL_{name.upper()}_"
    for workload in (kinds["Job"], kinds["Deployment"]):
        for container in _containers(workload):
            assert importlib.util.find_spec(_module_of(container["command"])) is not None
            for variable in container["env"]:
                assert variable["name"].startswith(prefix)
                assert variable["name"][len(prefix):].lower() in fields, variable["name"]
            values = {v["name"]: v.get("value") for v in container["env"]}
            # Pods listen on every interface; the embedded default stays on loopback.
            assert values[prefix + "HOST"] == "0.0.0.0"
            assert values[prefix + "PORT"] == str(port)
    assert _containers(kinds["Deployment"])[0]["command"][-1] == "serve"
    assert _containers(kinds["Job"])[0]["command"][-1] == "prepare"
    assert kinds["Service"]["spec"]["ports"][0]["port"] == port
    assert kinds["Service"]["spec"]["clusterIP"] == "None"  # client-side balancing


def test_the_worker_runs_the_workflows_worker_with_its_settings() -> None:
    (deployment,) = _documents("worker.yaml")
    (container,) = _containers(deployment)
    assert _module_of(container["command"]) == "workflows.worker"
    fields = set(WorkerSettings.model_fields)
    for variable in container["env"]:
        assert variable["name"].removeprefix("GOVHALL_WORKER_").lower() in fields
