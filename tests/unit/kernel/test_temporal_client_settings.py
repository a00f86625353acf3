"""How a process reaches Temporal: the JWT for a cluster's authorizer, read from its file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from kernel import temporal
from services.review.settings import ReviewSettings
from workflows.worker import WorkerSettings


def test_no_token_file_means_no_token() -> None:
    assert ReviewSettings().temporal_api_key() is None


def test_the_token_is_read_from_its_file(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJyZXZpZXcifQ.c2ln\n")
    monkeypatch.setenv("GOVHALL_WORKER_TEMPORAL_API_KEY_FILE", str(token))
    assert WorkerSettings().temporal_api_key() == \
        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJyZXZpZXcifQ.c2ln"


def test_an_empty_token_file_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("\n")
    with pytest.raises(ValueError, match="no token"):
        ReviewSettings(temporal_api_key_file=token).temporal_api_key()


async def test_connect_presents_the_token(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    async def fake_connect(target: str, **options: Any) -> str:
        seen.append(options | {"target": target})
        return "client"

    monkeypatch.setattr(Client, "connect", fake_connect)
    token = tmp_path / "token"
    token.write_text("jwt-1\n")
    settings = ReviewSettings(temporal_address="temporal:7233", temporal_namespace="govhall",
                              temporal_api_key_file=token, pki_dir=tmp_path / "pki")
    security = temporal.TemporalSecurity.from_settings(settings)
    await temporal.connect_with(settings, security=security)
    token.write_text("jwt-2\n")  # rotated: the next connection presents the new one
    await temporal.connect_with(settings, security=security)
    assert [(s["target"], s["namespace"], s["api_key"]) for s in seen] == [
        ("temporal:7233", "govhall", "jwt-1"), ("temporal:7233", "govhall", "jwt-2")]


async def test_without_a_token_file_no_token_is_presented(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    async def fake_connect(target: str, **options: Any) -> str:
        seen.update(options)
        return "client"

    monkeypatch.setattr(Client, "connect", fake_connect)
    await temporal.connect("temporal:7233", "govhall",
                           security=temporal.TemporalSecurity.embedded(tmp_path / "pki"))
    assert seen["api_key"] is None
