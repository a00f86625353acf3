"""Settings shared by every service; each service subclasses with its own prefix.

Nothing else in govhall reads os.environ: a service builds its settings
once at start-up, and a bad value stops it there with a clear message.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kernel.signing import TrustedKeys, public_keys_dir

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"


class TemporalClientSettings(BaseSettings):
    """How a process reaches Temporal: where, over what TLS, with which payload keys.

    Every process that talks to Temporal (services, the workflows worker, the
    runner, the codec server) takes these under its own prefix, for example
    ``GOVHALL_INTAKE_TEMPORAL_TLS_CA``. TLS is off unless a CA or a client
    certificate is named: the embedded default talks to a dev server on loopback.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    #: Where the CA, the server certificate and the client certificates live.
    pki_dir: Path = VAR / "pki"
    #: Folder of the payload codec's keys; default ``<pki_dir>/temporal-codec``.
    temporal_codec_dir: Path | None = None
    #: PEM file of the CA that signed the Temporal frontend's certificate.
    temporal_tls_ca: Path | None = None
    #: PEM client certificate and key for mTLS to the frontend (both or neither).
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    #: The name the frontend's certificate is checked against, when it is not the
    #: host in ``temporal_address``.
    temporal_tls_server_name: str = ""
    #: A file holding the JWT this process presents to Temporal's authorizer
    #: (``authorization: Bearer …``); its ``permissions`` claim grants the namespace.
    temporal_api_key_file: Path | None = None
    #: Longest wait between two attempts to reach Temporal while it is down.
    temporal_retry_max_seconds: float = Field(default=5.0, gt=0, le=300)

    @model_validator(mode="after")
    def _cert_with_key(self) -> TemporalClientSettings:
        if (self.temporal_tls_cert is None) != (self.temporal_tls_key is None):
            raise ValueError("temporal_tls_cert and temporal_tls_key go together: set both "
                             "or neither")
        return self

    @property
    def temporal_tls_enabled(self) -> bool:
        return (self.temporal_tls_ca is not None or self.temporal_tls_cert is not None
                or bool(self.temporal_tls_server_name))

    def resolved_codec_dir(self) -> Path:
        return self.temporal_codec_dir or self.pki_dir / "temporal-codec"

    def temporal_api_key(self) -> str | None:
        """The JWT in ``temporal_api_key_file``, read now (a rotated file is read on reconnect)."""
        if self.temporal_api_key_file is None:
            return None
        token = self.temporal_api_key_file.read_text(encoding="ascii").strip()
        if not token:
            raise ValueError(f"{self.temporal_api_key_file} holds no token")
        return token


class ServiceSettings(TemporalClientSettings):
    """What a service process needs to run: where to listen, its database, Temporal."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    #: The service's short name; fixed by each subclass.
    service: str = "service"
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    #: SQLAlchemy URL of the service's own database.
    database_url: str = ""
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
    #: Publish a signed audit checkpoint once the log is this many entries past the last
    #: one (0: never by count).
    audit_checkpoint_every_entries: int = Field(default=100, ge=0)
    #: Publish one when the log moved and the last checkpoint is this many seconds old
    #: (0: never by time).
    audit_checkpoint_interval_seconds: float = Field(default=300.0, ge=0)
    #: How often, in seconds, the service looks at its log's head for the two rules above.
    audit_checkpoint_poll_seconds: float = Field(default=5.0, gt=0)
    #: Seconds a process trusts its copy of the registry of calling systems before
    #: reading it again (a change made through another replica holds within this).
    systems_cache_seconds: float = Field(default=5.0, gt=0, le=300)

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
