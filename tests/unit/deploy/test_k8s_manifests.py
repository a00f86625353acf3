"""The production manifests name real settings, modules, ports and files, and give each pod
only the secrets it needs, readable by its owner only."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from deploy.local.runner import SERVICES
from kernel.codec_server import CodecServerSettings, token_path
from kernel.pki import ca_cert_path, client_pair, sample_system_names, server_pair
from kernel.signing import public_keys_dir, signing_key_path
from services.complaints.main import complainant_key_path
from services.complaints.settings import ComplaintsSettings
from services.intake.keystore import applicant_key_path, seal_key_path
from services.intake.settings import IntakeSettings
from services.review.settings import ReviewSettings
from services.trading.settings import TradingSettings
from workflows.worker import WorkerSettings

K8S = Path(__file__).resolve().parents[3] / "deploy" / "k8s"
ROOT = PurePosixPath("/pki")
#: The one Secret every Temporal client shares: the payload keys.
CODEC_SECRET = "govhall-temporal-codec"


def _relative(path: Path) -> str:
    return str(PurePosixPath(path).relative_to(ROOT))


#: The secret files each service reads, where the code reads them (relative to its PKI dir).
SERVING = {
    name: {_relative(server_pair(Path(ROOT)).cert), _relative(server_pair(Path(ROOT)).key),
           _relative(signing_key_path(Path(ROOT), name)),
           "temporal/client.pem", "temporal/client.key", "temporal/token"}
    for name, _ in SERVICES}
SERVING["intake"] |= {_relative(seal_key_path(Path(ROOT))),
                      _relative(applicant_key_path(Path(ROOT)))}
SERVING["complaints"] |= {_relative(complainant_key_path(Path(ROOT))),
                          # Its client certificate, for intake's CheckCaseLink.
                          _relative(client_pair(Path(ROOT), "complaints-service").cert),
                          _relative(client_pair(Path(ROOT), "complaints-service").key)}
SERVING["trading"] |= {
    # Its client certificate, for review's ListHolidaySchedules.
    _relative(client_pair(Path(ROOT), "trading-service").cert),
    _relative(client_pair(Path(ROOT), "trading-service").key)}
#: What ``prepare`` reads: intake makes sure its seal and applicant-data keys exist.
PREPARING: dict[str, set[str]] = {name: set() for name, _ in SERVICES}
PREPARING["intake"] = {_relative(seal_key_path(Path(ROOT))),
                       _relative(applicant_key_path(Path(ROOT)))}
WORKER = {"temporal/client.pem", "temporal/client.key", "temporal/token",
          # Its client certificate of the center's CA, for review's RecordRefusedAct.
          f"pki/{_relative(client_pair(Path(ROOT), 'workflows-worker').cert)}",
          f"pki/{_relative(client_pair(Path(ROOT), 'workflows-worker').key)}"}
#: The codec server's: its TLS server pair and the operators' bearer token.
CODEC_SERVER = {_relative(server_pair(Path(ROOT)).cert), _relative(server_pair(Path(ROOT)).key),
                _relative(token_path(Path(ROOT)))}


def _documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")) if d]


def _pod(document: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = document["spec"]["template"]["spec"]
    return pod


def _containers(document: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = _pod(document)["containers"]
    return containers


def _module_of(command: list[str]) -> str:
    assert command[:2] == ["python", "-m"]
    return command[2]


@dataclass(frozen=True)
class Mounted:
    """A file a container sees: its path, and the Secret or ConfigMap key it comes from."""

    path: PurePosixPath
    source: str  # "secret" or "configMap"
    name: str
    key: str  # "*" for a whole Secret mounted as a folder
    mode: int | None


def _mounted_files(document: dict[str, Any], container: dict[str, Any]) -> list[Mounted]:
    volumes = {v["name"]: v for v in _pod(document).get("volumes", [])}
    files: list[Mounted] = []
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        base = PurePosixPath(mount["mountPath"])
        if "projected" in volume:
            mode = volume["projected"].get("defaultMode")
            for source in volume["projected"]["sources"]:
                ((kind, spec),) = source.items()
                assert "items" in spec, f"{mount['name']}: project {spec['name']} item by item"
                files += [Mounted(base / i["path"], kind, spec["name"], i["key"],
                                  i.get("mode", mode)) for i in spec["items"]]
        elif "secret" in volume:
            spec = volume["secret"]
            files += [Mounted(base / i["path"], "secret", spec["secretName"], i["key"],
                              i.get("mode", spec.get("defaultMode")))
                      for i in spec.get("items", [])] or [
                Mounted(base, "secret", spec["secretName"], "*", spec.get("defaultMode"))]
        else:
            assert set(volume) <= {"name", "emptyDir"}, f"unexpected volume {volume}"
    return files


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in container.get("env", [])}


def _secrets_in_env(container: dict[str, Any]) -> set[str]:
    return {v["valueFrom"]["secretKeyRef"]["name"] for v in container.get("env", [])
            if "secretKeyRef" in v.get("valueFrom", {})}


def _workloads() -> list[tuple[str, str, dict[str, Any]]]:
    """(file, what runs, workload) for every Job and Deployment."""
    found = []
    for name, _ in SERVICES:
        for document in _documents(f"{name}.yaml"):
            if document["kind"] in ("Job", "Deployment"):
                found.append((name, document["kind"], document))
    (worker,) = _documents("worker.yaml")
    found.append(("worker", "Deployment", worker))
    found += [("codec-server", d["kind"], d) for d in _documents("codec-server.yaml")
              if d["kind"] == "Deployment"]
    return found


#: The workloads that talk to Temporal: every Deployment but the codec server.
def _temporal_client(name: str, kind: str) -> bool:
    return kind == "Deployment" and name != "codec-server"


def test_kustomization_lists_every_manifest() -> None:
    for folder in (K8S, K8S / "temporal"):
        listed = set(yaml.safe_load((folder / "kustomization.yaml").read_text())["resources"])
        present = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml",
                                                              "values.yaml"}
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
        assert variable["name"].startswith("GOVHALL_WORKER_")
        assert variable["name"].removeprefix("GOVHALL_WORKER_").lower() in fields


@pytest.mark.parametrize(("name", "settings_type"), [*SERVICES, ("worker", WorkerSettings)])
def test_temporal_is_reached_over_mtls_with_a_token(name: str, settings_type: Any) -> None:
    (deployment,) = [d for d in _documents(f"{name}.yaml") if d["kind"] == "Deployment"]
    (container,) = _containers(deployment)
    prefix = "GOVHALL_WORKER_" if name == "worker" else f"GOVHALL_{name.upper()}_"
    env = _env(container)
    files = {str(f.path) for f in _mounted_files(deployment, container)}
    for setting in ("TEMPORAL_TLS_CA", "TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY",
                    "TEMPORAL_API_KEY_FILE"):
        assert env[prefix + setting]["value"] in files, f"{name}: {setting} names no file"
    assert env[prefix + "TEMPORAL_CODEC_DIR"]["value"] in files
    assert env[prefix + "TEMPORAL_TLS_SERVER_NAME"]["valueFrom"]["configMapKeyRef"] == {
        "name": "govhall-temporal", "key": "server_name"}
    assert deployment["spec"]["template"]["metadata"]["labels"]["temporal-client"] == "true"


@pytest.mark.parametrize(("name", "kind", "workload"), _workloads(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_no_pod_mounts_a_secret_it_does_not_need(name: str, kind: str,
                                                 workload: dict[str, Any]) -> None:
    (container,) = _containers(workload)
    own = f"govhall-{name}"
    mounted = _mounted_files(workload, container)
    secrets = [f for f in mounted if f.source == "secret"]
    assert {f.name for f in secrets} | _secrets_in_env(container) <= {own, CODEC_SECRET}
    if name == "worker":
        base = PurePosixPath("/etc/govhall")
        needed = WORKER
    elif name == "codec-server":
        base = PurePosixPath(_env(container)["GOVHALL_CODEC_PKI_DIR"]["value"])
        needed = CODEC_SERVER
    else:
        base = PurePosixPath(_env(container).get(f"GOVHALL_{name.upper()}_PKI_DIR", {}).get(
            "value", "/etc/govhall/pki"))
        needed = SERVING[name] if kind == "Deployment" else PREPARING[name]
    own_files = {str(f.path.relative_to(base)) for f in secrets if f.name == own}
    assert own_files == needed
    codec = [f for f in secrets if f.name == CODEC_SECRET]
    # Only what talks to Temporal, or decodes for operators, holds the payload keys; a
    # migration never does.
    assert bool(codec) == (kind == "Deployment")


def test_the_seal_and_applicant_keys_are_in_intake_only() -> None:
    sensitive = {_relative(seal_key_path(Path(ROOT))), _relative(applicant_key_path(Path(ROOT)))}
    for name, _, workload in _workloads():
        (container,) = _containers(workload)
        paths = {f.path.name for f in _mounted_files(workload, container)}
        keys = {f.key for f in _mounted_files(workload, container)}
        held = {PurePosixPath(s).name for s in sensitive} & (paths | keys)
        assert not held or name == "intake", f"{name} holds {held}"


@pytest.mark.parametrize(("name", "kind", "workload"), _workloads(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_secret_files_are_readable_by_their_owner_only(name: str, kind: str,
                                                       workload: dict[str, Any]) -> None:
    (container,) = _containers(workload)
    for mounted in _mounted_files(workload, container):
        if mounted.source == "secret":
            assert mounted.mode == 0o400, f"{name} {kind}: {mounted.path}"
    for volume_mount in container.get("volumeMounts", []):
        if volume_mount["name"] != "tmp":
            assert volume_mount.get("readOnly") is True
    security = _pod(workload)["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
    assert _pod(workload)["automountServiceAccountToken"] is False


@pytest.mark.parametrize(("name", "settings_type"), SERVICES)
def test_a_service_finds_every_file_it_reads_where_it_reads_it(name: str,
                                                                settings_type: Any) -> None:
    (deployment,) = [d for d in _documents(f"{name}.yaml") if d["kind"] == "Deployment"]
    (container,) = _containers(deployment)
    pki = Path(_env(container)[f"GOVHALL_{name.upper()}_PKI_DIR"]["value"])
    files = {Path(str(f.path)) for f in _mounted_files(deployment, container)}
    assert ca_cert_path(pki) in files
    assert {server_pair(pki).cert, server_pair(pki).key} <= files
    assert signing_key_path(pki, name) in files
    # Every service's public key, to verify what the others sign.
    for other, _ in SERVICES:
        assert any(f.parent == public_keys_dir(pki) / other and f.suffix == ".pub"
                   for f in files), other


def test_only_govhalls_temporal_clients_and_operators_reach_the_frontend() -> None:
    policies = {d["metadata"]["name"]: d for d in _documents("temporal/networkpolicy.yaml")}
    frontend = policies["temporal-frontend"]["spec"]
    assert frontend["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "temporal", "app.kubernetes.io/component": "frontend"}
    assert frontend["policyTypes"] == ["Ingress"]
    outside, inside = frontend["ingress"]
    assert outside["ports"] == [{"protocol": "TCP", "port": 7233}]
    govhall, operators = outside["from"]
    assert govhall == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "govhall"}},
        "podSelector": {"matchLabels": {"app": "govhall", "temporal-client": "true"}}}
    assert operators == {"namespaceSelector": {
        "matchLabels": {"kubernetes.io/metadata.name": "govhall-operators"}}}
    # The cluster's own components, from its own namespace only (no namespaceSelector).
    assert inside["from"] == [{"podSelector": {
        "matchLabels": {"app.kubernetes.io/name": "temporal"}}}]
    internal = policies["temporal-internal-frontend"]["spec"]
    assert internal["ingress"] == [{"from": [{"podSelector": {
        "matchLabels": {"app.kubernetes.io/name": "temporal"}}}]}]
    # The migration Jobs are no Temporal clients.
    for name, kind, workload in _workloads():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert (labels.get("temporal-client") == "true") == _temporal_client(name, kind), name


def test_the_cluster_requires_client_certificates_and_authorizes_every_call() -> None:
    values = yaml.safe_load((K8S / "temporal" / "values.yaml").read_text(encoding="utf-8"))
    server = values["server"]
    for section in ("internode", "frontend"):
        assert server["tls"][section]["enabled"] is True
        assert server["tls"][section]["requireClientAuth"] is True
    authorization = server["config"]["authorization"]
    assert authorization["authorizer"] == "default"
    assert authorization["claimMapper"] == "default"
    assert authorization["jwtKeyProvider"]["keySourceURIs"]
    assert server["internal-frontend"]["enabled"] is True
    (config,) = _documents("config.yaml")
    assert config["data"]["server_name"] == server["tls"]["frontend"]["serverName"]


def test_the_worker_finds_every_services_public_key_in_its_pki_folder() -> None:
    (deployment,) = _documents("worker.yaml")
    (container,) = _containers(deployment)
    pki = Path(_env(container)["GOVHALL_WORKER_PKI_DIR"]["value"])
    in_pki = [f for f in _mounted_files(deployment, container)
              if PurePosixPath(pki) in f.path.parents]
    for name, _ in SERVICES:
        assert any(Path(str(f.path)).parent == public_keys_dir(pki) / name
                   and f.path.suffix == ".pub" for f in in_pki), name
    # Public keys and the center's CA, and as its only secret its own client certificate
    # (the calling system workflows-worker, for review's RecordRefusedAct).
    assert {str(f.path) for f in in_pki if f.source == "secret"} == {
        str(client_pair(pki, "workflows-worker").cert),
        str(client_pair(pki, "workflows-worker").key)}
    assert str(ca_cert_path(pki)) in {str(f.path) for f in in_pki if f.source == "configMap"}
    assert _env(container)["GOVHALL_WORKER_REVIEW_ADDRESS"]["value"].endswith(
        f":{ReviewSettings().port}")


def test_complaints_checks_links_at_intake_as_its_own_calling_system() -> None:
    deployment = next(w for name, kind, w in _workloads()
                      if (name, kind) == ("complaints", "Deployment"))
    (container,) = _containers(deployment)
    settings = ComplaintsSettings.model_validate(
        {v["name"].removeprefix("GOVHALL_COMPLAINTS_").lower(): v["value"]
         for v in container["env"] if "value" in v})
    assert settings.intake_address.endswith(f":{IntakeSettings().port}")
    mounted = {Path(str(f.path)) for f in _mounted_files(deployment, container)}
    pair = client_pair(settings.pki_dir, settings.calling_system)
    assert {pair.cert, pair.key} <= mounted
    assert settings.calling_system in sample_system_names()


@pytest.mark.parametrize(("name", "settings_type"), [("complaints", ComplaintsSettings),
                                                     ("trading", TradingSettings)])
def test_complaints_and_trading_read_holiday_schedules_at_review_as_their_own_system(
        name: str, settings_type: type[ComplaintsSettings | TradingSettings]) -> None:
    deployment = next(w for service, kind, w in _workloads()
                      if (service, kind) == (name, "Deployment"))
    (container,) = _containers(deployment)
    prefix = f"GOVHALL_{name.upper()}_"
    settings = settings_type.model_validate(
        {v["name"].removeprefix(prefix).lower(): v["value"]
         for v in container["env"] if "value" in v})
    assert settings.review_address.endswith(f":{ReviewSettings().port}")
    mounted = {Path(str(f.path)) for f in _mounted_files(deployment, container)}
    pair = client_pair(settings.pki_dir, settings.calling_system)
    assert {pair.cert, pair.key} <= mounted
    assert settings.calling_system in sample_system_names()


def test_the_codec_server_reads_its_files_where_they_are_mounted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    documents = {d["kind"]: d for d in _documents("codec-server.yaml")}
    assert set(documents) == {"Deployment", "Service"}
    deployment = documents["Deployment"]
    (container,) = _containers(deployment)
    assert _module_of(container["command"]) == "kernel.codec_server"
    fields = set(CodecServerSettings.model_fields)
    for variable in container["env"]:
        assert variable["name"].startswith("GOVHALL_CODEC_")
        assert variable["name"].removeprefix("GOVHALL_CODEC_").lower() in fields
    for variable in container["env"]:  # read as the process reads them
        monkeypatch.setenv(variable["name"], variable["value"])
    settings = CodecServerSettings()
    files = {Path(str(f.path)) for f in _mounted_files(deployment, container)}
    assert {server_pair(settings.pki_dir).cert, server_pair(settings.pki_dir).key,
            ca_cert_path(settings.pki_dir), settings.resolved_token_file(),
            settings.resolved_codec_dir()} <= files
    assert settings.host == "0.0.0.0"
    assert documents["Service"]["spec"]["ports"][0]["port"] == settings.port
    (config,) = _documents("config.yaml")
    assert settings.namespaces == [config["data"]["namespace"]]
    # The Temporal UI calls it with the operator's certificate, from the UI's own origin.
    values = yaml.safe_load((K8S / "temporal" / "values.yaml").read_text(encoding="utf-8"))
    web = {e["name"]: e["value"] for e in values["web"]["additionalEnv"]}
    assert web["TEMPORAL_CODEC_ENDPOINT"].startswith("https://")
    assert web["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    callback = web["TEMPORAL_AUTH_CALLBACK_URL"]
    assert settings.ui_origins == [callback[:callback.index("/", len("https://"))]]
