"""Temporal TLS and payload keys from each process's settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError
from temporalio.service import TLSConfig

from kernel.codec import EncryptingCodec
from kernel.temporal import TemporalSecurity, data_converter, tls_config
from services.intake.settings import IntakeSettings
from services.review.settings import ReviewSettings
from workflows.worker import WorkerSettings


def pem_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"ca": folder / "ca.pem", "cert": folder / "client.pem", "key": folder / "client.key"}
    for name, path in files.items():
        path.write_bytes(f"-----{name}-----\n".encode())
    return files


def test_without_tls_settings_the_connection_is_plain(tmp_path: Path) -> None:
    settings = IntakeSettings(pki_dir=tmp_path / "pki")
    assert tls_config(settings) is None
    assert TemporalSecurity.from_settings(settings).tls is False


def test_the_environment_names_ca_client_pair_and_server_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = pem_files(tmp_path / "temporal-tls")
    monkeypatch.setenv("GOVHALL_INTAKE_TEMPORAL_TLS_CA", str(files["ca"]))
    monkeypatch.setenv("GOVHALL_INTAKE_TEMPORAL_TLS_CERT", str(files["cert"]))
    monkeypatch.setenv("GOVHALL_INTAKE_TEMPORAL_TLS_KEY", str(files["key"]))
    monkeypatch.setenv("GOVHALL_INTAKE_TEMPORAL_TLS_SERVER_NAME", "frontend.temporal.svc")
    monkeypatch.setenv("GOVHALL_INTAKE_PKI_DIR", str(tmp_path / "pki"))
    security = TemporalSecurity.from_settings(IntakeSettings())
    assert security.tls == TLSConfig(
        server_root_ca_cert=b"-----ca-----\n", client_cert=b"-----cert-----\n",
        client_private_key=b"-----key-----\n", domain="frontend.temporal.svc")


def test_a_ca_alone_verifies_the_server_without_a_client_certificate(tmp_path: Path) -> None:
    files = pem_files(tmp_path / "tls")
    settings = ReviewSettings(temporal_tls_ca=files["ca"], pki_dir=tmp_path / "pki")
    assert tls_config(settings) == TLSConfig(server_root_ca_cert=b"-----ca-----\n")


def test_the_worker_takes_the_same_settings_under_its_prefix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = pem_files(tmp_path / "tls")
    monkeypatch.setenv("GOVHALL_WORKER_TEMPORAL_TLS_CA", str(files["ca"]))
    monkeypatch.setenv("GOVHALL_WORKER_TEMPORAL_CODEC_DIR", str(tmp_path / "codec"))
    settings = WorkerSettings()
    assert tls_config(settings) == TLSConfig(server_root_ca_cert=b"-----ca-----\n")
    assert settings.resolved_codec_dir() == tmp_path / "codec"


def test_a_client_certificate_without_its_key_is_refused_at_start(tmp_path: Path) -> None:
    files = pem_files(tmp_path / "tls")
    with pytest.raises(ValidationError, match="temporal_tls_cert and temporal_tls_key go"):
        IntakeSettings(temporal_tls_cert=files["cert"])


def test_payload_keys_live_under_the_pki_folder_unless_named(tmp_path: Path) -> None:
    settings = IntakeSettings(pki_dir=tmp_path / "pki")
    security = TemporalSecurity.from_settings(settings)
    assert (tmp_path / "pki" / "temporal-codec" / "0001.key").exists()
    assert security.codec.keyring.current == "0001"


async def test_the_data_converter_encrypts_payloads_and_failure_messages(
        tmp_path: Path) -> None:
    converter = data_converter(TemporalSecurity.embedded(tmp_path / "pki").codec)
    assert isinstance(converter.payload_codec, EncryptingCodec)
    [payload] = await converter.encode([{"opinion": "marker-opinion"}])
    assert b"marker-opinion" not in payload.SerializeToString()
    failure = Failure()
    await converter.encode_failure(ApplicationError("marker-refusal", type="Refused"), failure)
    assert b"marker-refusal" not in failure.SerializeToString()
    restored = await converter.decode_failure(failure)
    assert isinstance(restored, ApplicationError)
    assert (restored.message, restored.type) == ("marker-refusal", "Refused")
