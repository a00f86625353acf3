"""A question to another service about something a record links to, over mTLS.

A service that checks a link (complaints asking intake about an approval case,
trading about a tender) asks the other service as its own calling system, with
the client certificate of the center's CA for that system
(``<pki_dir>/clients/<system>.pem`` in the embedded default); the other
service's registry decides what that system may call. ``LinkedLookup`` is that
client: one channel, opened on first use in the event loop every call runs in,
and one way of answering when the other service does not:

- down, restarting or slow (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED):
  ``kernel.errors.Unavailable``, so the activity that asked is retried; the
  channel reconnects at most ``max_reconnect_backoff`` apart, so a retry finds
  the service soon after it is back, and each call waits (within its timeout)
  for the service to be reachable rather than failing on a channel still
  backing off;
- any refusal (the registry, a malformed number): ``FailedPrecondition``, which
  does not pass by itself, so it is not retried.

A process given no address of the other service builds no lookup
(``lookup_at``): the link stays unchecked, and the service records why.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

import grpc

from kernel.errors import FailedPrecondition, Unavailable
from kernel.grpcserver import channel_credentials

StubT = TypeVar("StubT")
RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")
LookupT = TypeVar("LookupT")

#: Longest one question may take, waiting for the other service to be reachable included.
CALL_TIMEOUT_SECONDS = 10.0
#: Answers worth trying again: the other service is down, restarting or slow.
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.RESOURCE_EXHAUSTED})
#: While the other service is down the channel tries to reconnect at most this far apart, so
#: a retried check finds it soon after it is back (gRPC's default waits up to two minutes).
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 200),
                   ("grpc.min_reconnect_backoff_ms", 200),
                   ("grpc.max_reconnect_backoff_ms", 2000)]


def code_of(name: str, prefix: str) -> str:
    """A proto enum value's name as the code a service keeps ("TENDER_STAGE_BIDDING",
    "TENDER_STAGE_" -> "bidding")."""
    return name.removeprefix(prefix).lower()


def lookup_at(address: str, build: Callable[[str], LookupT]) -> LookupT | None:
    """The lookup of the service at ``address``; None (the link stays unchecked) without one."""
    return build(address) if address else None


class LinkedLookup(ABC, Generic[StubT]):
    """Asks ``service`` at ``address`` as ``system``; one channel, opened on first use.

    A subclass gives the stub of its service (``stub_of``) and its question, which
    it asks with ``ask``.
    """

    #: The other service's name, as the errors say it ("intake", "trading").
    service: ClassVar[str]

    def __init__(self, address: str, *, pki_dir: Path, system: str,
                 timeout_seconds: float = CALL_TIMEOUT_SECONDS) -> None:
        self._address = address
        self._pki_dir = pki_dir
        self._system = system
        self._timeout = timeout_seconds
        self._channel: grpc.aio.Channel | None = None
        self._stub: StubT | None = None

    @abstractmethod
    def stub_of(self, channel: grpc.aio.Channel) -> StubT:
        """The other service's stub on ``channel``."""

    def _service(self) -> StubT:
        # Opened in the activity worker's event loop, where every call runs.
        if self._stub is None:
            self._channel = grpc.aio.secure_channel(
                self._address, channel_credentials(self._pki_dir, self._system),
                options=CHANNEL_OPTIONS)
            self._stub = self.stub_of(self._channel)
        return self._stub

    async def ask(self, rpc: Callable[[StubT], grpc.aio.UnaryUnaryMultiCallable[
            RequestT, ResponseT]], request: RequestT) -> ResponseT:
        """``rpc``'s answer to ``request``; Unavailable while the service cannot answer (try
        again), FailedPrecondition when it refuses."""
        try:
            return await rpc(self._service())(
                request,
                # Waits (within the timeout) for the service to be reachable, instead of
                # failing at once on a channel still backing off from an outage.
                timeout=self._timeout, wait_for_ready=True)
        except grpc.aio.AioRpcError as error:
            if error.code() in TRANSIENT:
                raise Unavailable(f"{self.service} at {self._address} did not answer "
                                  f"({error.code().name}): the link is checked again later"
                                  ) from error
            # A refusal (the registry, a malformed number) does not pass by itself.
            raise FailedPrecondition(
                f"{self.service} refused to check the link "
                f"({error.code().name}: {error.details()})") from error

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = self._stub = None
