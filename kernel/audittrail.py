"""A service's audit trail as a whole: its log, its signed checkpoints, its authority rows.

``AuditTrailService`` holds the use cases every service shares: publish a
checkpoint (on demand, or on its own by a ``CheckpointPolicy``), read the
checkpoint feed and the log, list the signing keys, and verify the whole
trail: the chain, every checkpoint (the service's own and those an outsider
kept), and the rows that carry authority.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine, Table

from kernel.audit import AuditLog, CheckpointClaim, RefusedCheckpoint, Verification, verify_entries
from kernel.authority import AuthorityEntries, AuthorityTable, check_authority
from kernel.checkpoints import (
    BadCheckpoint,
    Checkpoint,
    CheckpointFeed,
    CheckpointPolicy,
    check_checkpoint,
)
from kernel.directory import StaffDirectory, require_official
from kernel.identity import Caller
from kernel.paging import page_size
from kernel.signing import (
    ServiceSigner,
    TrustedKeys,
    key_id,
    public_keys_dir,
    service_signer,
)

log = structlog.get_logger("govhall.audit")

#: Entries per page of ExportAuditLog when the caller names no size.
EXPORT_PAGE_SIZE = 500


@dataclass(frozen=True)
class AuditTrail:
    """Where a service keeps its audit log and checkpoints, and which rows carry authority."""

    log: Table
    checkpoints: Table
    #: The service's copy of the staff directory, to authorise an operator.
    officials: Table
    authority: Sequence[AuthorityTable] = ()


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    public_key: Ed25519PublicKey
    current: bool


@dataclass(frozen=True)
class CheckpointPage:
    checkpoints: list[Checkpoint]
    next_cursor: int


@dataclass(frozen=True)
class EntryPage:
    entries: list[dict[str, Any]]
    next_after_sequence: int


class AuditTrailService:
    """The audit trail's use cases for one service, on its engine."""

    def __init__(self, engine: Engine, trail: AuditTrail, *, service: str, pki_dir: Path,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._engine = engine
        self._trail = trail
        self._service = service
        self._pki_dir = pki_dir
        self._clock = clock
        self._signer: ServiceSigner | None = None

    @property
    def service(self) -> str:
        return self._service

    @property
    def signer(self) -> ServiceSigner:
        """The service's signing key, made on first use."""
        if self._signer is None:
            self._signer = service_signer(self._pki_dir, self._service)
        return self._signer

    def trusted_keys(self) -> TrustedKeys:
        """The service's published public keys (every one it has used) and its current key."""
        published = TrustedKeys.load(public_keys_dir(self._pki_dir))
        keys = [published.public_key(self._service, kid)
                for kid in published.signers().get(self._service, [])]
        return TrustedKeys({self._service: [*(k for k in keys if k is not None),
                                            self.signer.public_key]})

    def signing_keys(self) -> list[SigningKey]:
        trusted = self.trusted_keys()
        current = self.signer.key_id
        found = [trusted.public_key(self._service, kid)
                 for kid in trusted.signers().get(self._service, [])]
        return [SigningKey(key_id(k), k, key_id(k) == current) for k in found if k is not None]

    # ---- units of work -------------------------------------------------------------------

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """A reading transaction that sees one state of the whole database."""
        engine = self._engine.execution_options(govhall_write=False)
        if engine.dialect.name == "postgresql":
            # The log and the authority rows must be read at the same moment.
            engine = engine.execution_options(isolation_level="REPEATABLE READ")
        with engine.connect() as connection:
            try:
                yield connection
            finally:
                connection.rollback()

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._engine.execution_options(govhall_write=True).connect() as connection:
            yield connection

    def _feed(self, connection: Connection) -> CheckpointFeed:
        return CheckpointFeed(connection, self._trail.checkpoints,
                              AuditLog(connection, self._trail.log), self._service)

    # ---- checkpoints ---------------------------------------------------------------------

    def publish(self, *, caller: Caller) -> Checkpoint:
        """Sign the head now, on an operator's demand."""
        signer = self.signer
        with self._writing() as connection:
            official = require_official(StaffDirectory(connection, self._trail.officials),
                                        caller, role="operator")
            checkpoint = self._feed(connection).publish(
                signer, at=self._clock(), published_by=f"operator:{official.id}")
            connection.commit()
        log.info("audit.checkpoint_published", number=checkpoint.number,
                 sequence=checkpoint.sequence, by="operator")
        return checkpoint

    def publish_if_due(self, policy: CheckpointPolicy) -> Checkpoint | None:
        """Sign the head if ``policy`` says it is time; None if it is not."""
        with self._snapshot() as connection:
            head, _ = AuditLog(connection, self._trail.log).head()
            due = policy.due(head_sequence=head, latest=self._feed(connection).latest(),
                             now=self._clock())
        if not due:
            return None
        signer = self.signer
        with self._writing() as connection:
            feed = self._feed(connection)
            head, _ = AuditLog(connection, self._trail.log).head()
            # Another replica may have published in between.
            if not policy.due(head_sequence=head, latest=feed.latest(), now=self._clock()):
                return None
            checkpoint = feed.publish(signer, at=self._clock(), published_by=due)
            connection.commit()
        log.info("audit.checkpoint_published", number=checkpoint.number,
                 sequence=checkpoint.sequence, by=due)
        return checkpoint

    async def run_checkpoints(self, policy: CheckpointPolicy, stopping: asyncio.Event) -> None:
        """Publish checkpoints by ``policy`` until ``stopping`` is set; a failure is retried.

        Stopping waits for a publication under way, so nothing touches the
        database after this returns.
        """
        while True:
            try:
                await asyncio.wait_for(stopping.wait(), timeout=policy.poll_seconds)
                return
            except TimeoutError:
                pass
            try:
                await asyncio.to_thread(self.publish_if_due, policy)
            except Exception:  # the database may be away for a while; try at the next poll
                log.exception("audit.checkpoint_failed")

    def checkpoints(self, *, cursor: int, requested_size: int) -> CheckpointPage:
        with self._snapshot() as connection:
            found = self._feed(connection).after(cursor, limit=page_size(requested_size))
        return CheckpointPage(found, found[-1].number if found else cursor)

    def export(self, *, after_sequence: int, requested_size: int) -> EntryPage:
        with self._snapshot() as connection:
            entries = AuditLog(connection, self._trail.log).after(
                after_sequence, limit=requested_size or EXPORT_PAGE_SIZE)
        return EntryPage(entries, int(entries[-1]["sequence"]) if entries else after_sequence)

    # ---- verification --------------------------------------------------------------------

    def _claims(self, checkpoints: Sequence[Checkpoint]
                ) -> tuple[list[CheckpointClaim], list[RefusedCheckpoint]]:
        keys = self.trusted_keys()
        claims: dict[tuple[int, int, str], CheckpointClaim] = {}
        refused: list[RefusedCheckpoint] = []
        for checkpoint in checkpoints:
            try:
                claim = check_checkpoint(checkpoint, service=self._service, keys=keys)
            except BadCheckpoint as error:
                refused.append(RefusedCheckpoint(checkpoint.number, checkpoint.sequence,
                                                 checkpoint.key_id, error.reason))
                continue
            claims.setdefault((claim.number, claim.sequence, claim.head_hash), claim)
        return list(claims.values()), refused

    def verify(self, *, kept: Sequence[Checkpoint] = ()) -> Verification:
        """Check the chain against every checkpoint (the service's own and ``kept``) and
        the rows that carry authority against their audit entries."""
        with self._snapshot() as connection:
            stored = self._feed(connection).all()
            claims, refused = self._claims([*stored, *kept])
            gathered = AuthorityEntries()
            entries = AuditLog(connection, self._trail.log).stream()

            def gathering() -> Iterator[dict[str, Any]]:
                for entry in entries:
                    gathered.see(entry)
                    yield entry

            chain = verify_entries(gathering(), claims)
            for entry in entries:  # what follows a broken link still names rows
                gathered.see(entry)
            checked, mismatches = check_authority(connection, self._trail.authority, gathered)
        reason = chain.reason
        if not reason and refused:
            first = refused[0]
            reason = f"checkpoint #{first.number} was refused: {first.reason}"
        if not reason and mismatches:
            reason = mismatches[0].reason
        return replace(chain, intact=chain.intact and not refused and not mismatches,
                       reason=reason, refused_checkpoints=tuple(refused),
                       authority_rows_checked=checked, mismatched_rows=tuple(mismatches))
