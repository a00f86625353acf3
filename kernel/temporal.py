"""The Temporal client every process uses, and the custom search attributes.

Search attributes carry identifiers and states only, never personal data.
They are registered when the dev server starts (deploy/local) and in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import stamina
import structlog
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.service import RPCError, TLSConfig
from temporalio.worker import Worker

from kernel.codec import EncryptingCodec, Keyring, codec_dir
from kernel.settings import TemporalClientSettings

log = structlog.get_logger("govhall.temporal")

CASE_NUMBER = SearchAttributeKey.for_keyword("CaseNumber")
ITEM_CODE = SearchAttributeKey.for_keyword("ItemCode")
DEPARTMENT = SearchAttributeKey.for_keyword("Department")
STAGE = SearchAttributeKey.for_keyword("Stage")
SLA_STATE = SearchAttributeKey.for_keyword("SlaState")
DUE_TIME = SearchAttributeKey.for_datetime("DueTime")
CASE_KIND = SearchAttributeKey.for_keyword("CaseKind")

SEARCH_ATTRIBUTES = (CASE_NUMBER, ITEM_CODE, DEPARTMENT, STAGE, SLA_STATE, DUE_TIME, CASE_KIND)

#: The task queue of workflow code (activities run on each service's own queue).
WORKFLOW_TASK_QUEUE = "govhall-workflows"


def search_attribute_flags() -> list[str]:
    """``--search-attribute Name=Type`` arguments for ``temporal server start-dev``."""
    kinds = {"KEYWORD": "Keyword", "DATETIME": "Datetime"}
    flags: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}"]
    return flags


def no_api_key() -> str | None:
    """No token: the embedded dev server has no authorizer."""
    return None


@dataclass(frozen=True)
class TemporalSecurity:
    """What protects a process's traffic with Temporal: payload encryption, TLS, its token."""

    codec: EncryptingCodec
    #: ``False`` for plain gRPC (a dev server on loopback).
    tls: TLSConfig | bool = False
    #: Reads the JWT a cluster's authorizer wants (sent as ``authorization: Bearer …``),
    #: at each connection, so a rotated token file is read when a client next connects.
    api_key: Callable[[], str | None] = no_api_key

    @classmethod
    def from_settings(cls, settings: TemporalClientSettings) -> TemporalSecurity:
        """The keyring from the settings' folder (made on first use), their TLS and token."""
        return cls(EncryptingCodec(Keyring.load(settings.resolved_codec_dir()),
                                  refuse_undecodable=False),
                   tls_config(settings) or False, settings.temporal_api_key)

    @classmethod
    def embedded(cls, pki_dir: Path) -> TemporalSecurity:
        """The embedded default's: the payload keys under ``pki_dir``, no TLS (loopback)."""
        return cls(EncryptingCodec(Keyring.load(codec_dir(pki_dir)), refuse_undecodable=False))


def tls_config(settings: TemporalClientSettings) -> TLSConfig | None:
    """The TLS the settings ask for; None when they name no CA, certificate or server name."""
    if not settings.temporal_tls_enabled:
        return None
    return TLSConfig(
        server_root_ca_cert=(settings.temporal_tls_ca.read_bytes()
                             if settings.temporal_tls_ca else None),
        client_cert=settings.temporal_tls_cert.read_bytes() if settings.temporal_tls_cert else None,
        client_private_key=(settings.temporal_tls_key.read_bytes()
                            if settings.temporal_tls_key else None),
        domain=settings.temporal_tls_server_name or None,
    )


def data_converter(codec: EncryptingCodec) -> DataConverter:
    """Dataclasses and pydantic models as JSON, then encrypted; failure messages too.

    Failure messages and stack traces are moved into an encoded payload, since a
    refusal's message can name what was refused.
    """
    return dataclasses.replace(
        pydantic_data_converter, payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes)


async def connect(address: str, namespace: str = "default", *,
                  security: TemporalSecurity) -> Client:
    """A client whose payloads are encrypted, over TLS when the settings ask for it.

    It presents the security's token, if any, to the cluster's authorizer.
    """
    return await Client.connect(address, namespace=namespace, tls=security.tls,
                                api_key=security.api_key(),
                                data_converter=data_converter(security.codec))


async def connect_with(settings: TemporalClientSettings, *,
                       security: TemporalSecurity | None = None) -> Client:
    """``connect`` to the address and namespace the settings name."""
    return await connect(settings.temporal_address, settings.temporal_namespace,
                         security=security or TemporalSecurity.from_settings(settings))


class BackgroundWorker:
    """A Temporal worker that connects in the background and polls once Temporal answers.

    The process serves (gRPC reads, health) while Temporal is down; this keeps
    trying to connect, with capped exponential back-off, and starts polling
    when Temporal comes back. ``task`` ends only when the worker stops: after
    ``shutdown``, or with the error that killed it.
    """

    def __init__(self, *, name: str, connect: Callable[[], Awaitable[Client]],
                 make_worker: Callable[[Client], Worker],
                 retry_wait_max: timedelta = timedelta(seconds=5)) -> None:
        self.name = name
        self._connect = connect
        self._make_worker = make_worker
        self._retry_wait_max = retry_wait_max
        self.worker: Worker | None = None
        self.connected = asyncio.Event()
        self.task: asyncio.Task[None] = asyncio.create_task(self._run(), name=f"{name}-worker")

    async def _run(self) -> None:
        client: Client | None = None
        # RuntimeError is how the SDK reports a frontend it cannot reach. ``async for``: the
        # waits between attempts are asyncio sleeps (a plain ``for`` sleeps in time.sleep and
        # stops the whole process, gRPC server included, while Temporal is down).
        async for attempt in stamina.retry_context(on=(RuntimeError, RPCError), attempts=None,
                                                   timeout=None,
                                                   wait_max=self._retry_wait_max):
            with attempt:
                client = await self._connect()
        assert client is not None
        self.worker = self._make_worker(client)
        self.connected.set()
        log.info("temporal.worker_connected", worker=self.name)
        await self.worker.run()

    async def shutdown(self) -> None:
        """Stop polling (letting running activities finish) or stop trying to connect.

        Re-raises the error that killed the worker, if one did.
        """
        if self.worker is not None and not self.task.done():
            await self.worker.shutdown()
        else:
            self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
