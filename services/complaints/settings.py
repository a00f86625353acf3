"""The complaints service's settings: environment variables prefixed GOVHALL_COMPLAINTS_."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
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
    #: Trading's gRPC address, where complaints' links to tenders are checked
    #: (CheckTenderLink); empty: links to tenders stay unchecked.
    trading_address: str = ""
    #: The calling system this service is to intake, trading and review (its client certificate
    #: under pki_dir).
    calling_system: str = "complaints-service"
    #: Review's gRPC address, where the holiday schedules operators loaded are read
    #: (ListHolidaySchedules); empty: deadlines follow the built-in schedules only.
    review_address: str = ""
    #: How old the copy of review's holiday schedules may grow before it is read again.
    holiday_refresh_seconds: float = Field(default=300.0, gt=0)
    #: A deadline in a year with no schedule reads review again at once, at most this often.
    holiday_retry_spacing_seconds: float = Field(default=5.0, ge=0)
    #: How often open cases whose deadlines guessed a year are looked at, to recompute them
    #: once the year's schedule is loaded (services/complaints/app/deadlines.py).
    deadline_recompute_seconds: float = Field(default=300.0, gt=0)
    #: How often the outbox looks for committed cases without a workflow; a submit (gRPC or
    #: an Open311 post) wakes it at once, so this only matters after an outage.
    outbox_poll_seconds: float = Field(default=2.0, gt=0)
    #: How long one webhook delivery may take (connect, send, answer) before it counts as
    #: failed and Temporal tries again.
    webhook_timeout_seconds: float = 10.0
    #: Take plain-http webhook URLs to the loopback host (127.0.0.1, ::1, localhost): only
    #: where a platform's receiver runs beside the service (the embedded default, tests);
    #: off in production, where every webhook URL is https.
    webhook_allow_loopback: bool = False

    #: Port of the Open311 GeoReport v2 façade (HTTPS, on ``host``); 0 picks a free one.
    open311_port: int = Field(default=50055, ge=0, le=65535)
    #: Serve the Open311 façade beside the gRPC server.
    open311_enabled: bool = True
    #: Where the embedded default writes each platform's Open311 API key (0600); empty for
    #: ``<pki_dir>/../open311/api-keys.json`` (``var/open311/api-keys.json`` by default).
    open311_api_keys_file: Path | None = None
    #: Write that file (and issue the keys it holds) when the service prepares; off where
    #: keys are handed to platforms another way.
    open311_write_api_keys: bool = True

    def resolved_open311_api_keys_file(self) -> Path:
        return self.open311_api_keys_file or self.pki_dir.parent / "open311" / "api-keys.json"

    @property
    def open311_url(self) -> str:
        """The façade's base URL as configured (port 0 is only known once it listens)."""
        return f"https://{self.host}:{self.open311_port}/open311/v2"


def complainant_key_path(pki_dir: Path) -> Path:
    """The AES-256-GCM key complainants' names and phones are sealed with, made on first use.

    The platforms' webhook signing secrets are sealed with it too.
    """
    return pki_dir / "complaints" / "complainant-data.key"
