"""The trading service's settings: environment variables prefixed GOVHALL_TRADING_."""

from __future__ import annotations

from pydantic import Field
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
    #: How often a following WatchTrades stream looks for new steps.
    watch_poll_seconds: float = 0.25
    #: Review's gRPC address, where the holiday schedules operators loaded are read
    #: (ListHolidaySchedules); empty: working days follow the built-in schedules only.
    review_address: str = ""
    #: The calling system this service is to review (its client certificate under pki_dir).
    calling_system: str = "trading-service"
    #: How old the copy of review's holiday schedules may grow before it is read again.
    holiday_refresh_seconds: float = Field(default=300.0, gt=0)
    #: A limit in a year with no schedule reads review again at once, at most this often.
    holiday_retry_spacing_seconds: float = Field(default=5.0, ge=0)
