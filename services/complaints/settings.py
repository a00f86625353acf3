"""The complaints service's settings: environment variables prefixed GOVHALL_COMPLAINTS_."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from kernel.settings import ServiceSettings


class ComplaintsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GOVHALL_COMPLAINTS_", extra="ignore",
                                      frozen=True)

    service: str = "complaints"
    port: int = 50054
    #: Intake's gRPC address, where complaints' links to approval cases are checked
    #: (CheckCaseLink); empty: links to approval cases stay unchecked.
    intake_address: str = ""
    #: The calling system this service is to intake (its client certificate under pki_dir).
    calling_system: str = "complaints-service"
    #: How long one webhook delivery may take (connect, send, answer) before it counts as
    #: failed and Temporal tries again.
    webhook_timeout_seconds: float = 10.0


def complainant_key_path(pki_dir: Path) -> Path:
    """The AES-256-GCM key complainants' names and phones are sealed with, made on first use.

    The platforms' webhook signing secrets are sealed with it too.
    """
    return pki_dir / "complaints" / "complainant-data.key"
