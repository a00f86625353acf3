"""The review service's settings: environment variables prefixed GOVHALL_REVIEW_."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from kernel.settings import ServiceSettings


class ReviewSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GOVHALL_REVIEW_", extra="ignore", frozen=True)

    service: str = "review"
    port: int = 50052
    #: How long a call waits for an approval workflow to take a decision or answer a
    #: query before it answers UNAVAILABLE (the caller then retries, same request_id).
