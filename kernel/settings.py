"""Settings shared by every service; each service subclasses with its own prefix.

Nothing else in govhall reads os.environ: a service builds its settings
once at start-up, and a bad value stops it there with a clear message.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kernel.signing import TrustedKeys, public_keys_dir

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"


class ServiceSettings(BaseSettings):
    """What a service process needs to run: where to listen, its database, Temporal."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    #: The service's short name; fixed by each subclass.
    service: str = "service"
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    #: SQLAlchemy URL of the service's own database.
    database_url: str = ""
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    #: Where the CA, the server certificate and the client certificates live.
    pki_dir: Path = VAR / "pki"
    #: Where the services' published public keys are (``<service>/<key id>.pub``);
    #: empty for ``<pki_dir>/services``, where the embedded default publishes them.
    public_keys_dir: Path | None = None
    #: Folder of the sample directory data loaded on first start.
    sample_dir: Path = ROOT / "deploy" / "sample"
    log_level: str = "info"
    #: Largest request the server accepts, in bytes.
    max_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    #: Seconds the server gives calls in flight to finish on shutdown.
    shutdown_grace_seconds: float = Field(default=5.0, ge=0)
    #: Seconds a call waits for Temporal (an update, a start) before it is UNAVAILABLE.
    workflow_call_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    #: Run the service's activity worker in the same process.
    run_activity_worker: bool = True

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.lower()
        if level not in {"debug", "info", "warning", "error"}:
            raise ValueError("log_level must be one of debug, info, warning, error")
        return level

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    #: Task queues are this prefix and the service's name (``govhall-review``), the
    #: workflows' this prefix and ``workflows``.
    task_queue_prefix: str = Field(default="govhall-", pattern=r"^[a-z0-9][a-z0-9._-]{0,60}-$")

    @property
    def task_queue(self) -> str:
        """The task queue of this service's activities."""
        return f"{self.task_queue_prefix}{self.service}"

    @property
    def workflow_task_queue(self) -> str:
        """The task queue of the workflows this service starts."""
        return f"{self.task_queue_prefix}workflows"

    def trusted_keys(self) -> TrustedKeys:
        """The services' public keys this process verifies statements with."""
        return TrustedKeys.load(self.public_keys_dir or public_keys_dir(self.pki_dir))

    def resolved_database_url(self) -> str:
        """The configured URL, or the embedded default: a SQLite file under var/."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{VAR / 'db' / f'{self.service}.sqlite3'}"
