"""The trading service's settings: environment variables prefixed GOVHALL_TRADING_."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from kernel.settings import ServiceSettings


class TradingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GOVHALL_TRADING_", extra="ignore", frozen=True)

    service: str = "trading"
    port: int = 50053
    #: How often open draws are checked for a reveal deadline that has come.
    draw_close_poll_seconds: float = 2.0
    #: How long an officer's AnnounceTender waits for the tender's workflow to start
    #: before it answers with the start pending (the outbox starts it later).
    tender_start_wait_seconds: float = 2.0
