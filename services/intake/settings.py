"""The intake service's settings: environment variables prefixed GOVHALL_INTAKE_."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from kernel.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GOVHALL_INTAKE_", extra="ignore", frozen=True)

    service: str = "intake"
    port: int = 50051
