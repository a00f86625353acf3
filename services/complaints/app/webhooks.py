"""Platforms told of their cases: events emitted, webhooks set, delivered and pulled.

An event is written in the transaction of the change it tells of
(``emit_platform_event``), so it exists exactly when the change does, and
gets its id there, once: every delivery attempt and every pull shows that
id, so a platform drops a repeat by it (Standard Webhooks' webhook-id).

Each platform's events are numbered 1, 2, ... by a counter row the emitting
transaction updates (kernel.db.RunningNumbers): a second transaction emitting
for the same platform waits on that row until the first commits or rolls
back, so numbers become visible in order and without gaps, and a reader
continuing after the last number it saw misses none and reads none twice.

The signing secret is made here (``whsec_`` + base64 of 32 random bytes, as
Standard Webhooks describes), returned once to the operator who set the
webhook, and kept only sealed with the complaints field key
(kernel.fieldcipher, bound to the platform id). Setting the webhook again
makes a new secret, and the old one signs nothing more.

The URL is checked again at every delivery, against the setting in force then
(``webhook_allow_loopback``) and the addresses its host resolves to now: a URL
set while the setting was on, or whose name has come to resolve to this host
(loopback), a link-local, unspecified or multicast address, or an IPv6 address
carrying an IPv4 one (``domain.webhooks.address_refusal``, the rule a literal
address in the URL is held to), is refused. A refused
event is not sent: the refusal is kept in the audit log
(``platform_event.delivery_refused``: the event, the platform and why) and
logged, and the delivery fails for good (FAILED_PRECONDITION, not retried);
the event stays pullable. An operator sets a URL that passes
(``SetPlatformWebhook``); events refused before are not sent again.

A delivery that passes connects only to the addresses it checked (in the
resolver's order, the next one only when connecting failed), with the name as
Host header and TLS server name: the name is not looked up a second time, so an
answer changing between the check and the connection (DNS rebinding) does not
reach the network it was refused.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import structlog
from sqlalchemy import Engine
from standardwebhooks import Webhook

from kernel.audit import Actor
from kernel.directory import require_official
from kernel.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from kernel.fieldcipher import FieldCipher, FieldCipherError
from kernel.identity import Caller
from kernel.paging import after_number, encode_token, page_size, rows_to_fetch
from services.complaints.db.repository import ComplaintsUnitOfWork
from services.complaints.domain.model import Platform
from services.complaints.domain.webhooks import (
    PlatformEvent,
    PlatformWebhook,
    address_refusal,
    check_webhook_url,
    event_data,
)

log = structlog.get_logger("govhall.complaints.webhooks")

#: Who may set a platform's webhook: an operator of the center.
WEBHOOK_ROLE = "operator"
CENTER_DEPARTMENT = "ZWFWZX"
SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix, not a secret)
#: Standard Webhooks asks for 24 to 64 random bytes.
SECRET_BYTES = 32


class WebhookNotDelivered(Exception):
    """The platform's endpoint did not take the event: Temporal tries again."""


#: The audit action of a delivery refused because the webhook URL no longer passes.
DELIVERY_REFUSED = "platform_event.delivery_refused"
#: Who refuses a delivery in the audit log: the workflows' activity (recording.WORKFLOWS).
DELIVERY_ACTOR = "govhall-workflows"

#: The addresses a host name resolves to now (the delivery's own resolver by default).
Resolve = Callable[[str, int], Awaitable[list[str]]]


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to now, in the resolver's order without repeats
    (socket.getaddrinfo, off the event loop): the order delivery tries them in."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


@dataclass(frozen=True)
class WebhookSet:
    webhook: PlatformWebhook
    #: The signing secret, shown this once.
    secret: str


@dataclass(frozen=True)
class PlatformEventPage:
    events: list[PlatformEvent]
    #: Where to continue: after the last event here, or where the request started.
    next_page_token: str
    #: More events follow this page now.
    more: bool


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    #: The HTTP status the platform answered; 0 when nothing was sent.
    status_code: int


def new_signing_secret() -> str:
    """A fresh Standard Webhooks signing secret."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def new_event_id() -> str:
    """``msg_`` and 26 base32 characters: 130 random bits, never reused."""
    return "msg_" + base64.b32encode(secrets.token_bytes(17)).decode("ascii").lower()[:26]


def emit_platform_event(uow: ComplaintsUnitOfWork, *, platform_id: str, case_number: str,
                        event_type: str, data: dict[str, str], at: datetime) -> str:
    """Record, in ``uow``'s transaction, an event for the platform a case came from; its id.

    The caller commits. ValueError when the case is not the platform's, or the
    event's type or fields are not those ``domain.webhooks.EVENT_FIELDS`` lists.
    """
    stored = uow.cases.get(case_number)
    if stored is None or stored.complaint.platform_id != platform_id:
        raise ValueError(f"case {case_number} is not a case of platform {platform_id}")
    sequence = uow.platform_event_numbers.next(platform_id)
    content = event_data(event_type, data, case_number=case_number,
                         external_id=stored.complaint.external_id, sequence=sequence)
    event = PlatformEvent(
        event_id=new_event_id(), platform_id=platform_id,
        sequence=sequence, case_number=case_number,
        event_type=event_type, data=content, created_at=at, delivered_at=None, attempts=0,
        last_status=0)
    uow.platform_events.add(event)
    return event.event_id


def _platform(uow: ComplaintsUnitOfWork, platform_id: str) -> Platform:
    found = [p for p in uow.platforms.list() if p.id == platform_id]
    if not found:
        raise NotFound(f"platform {platform_id} is not registered: ListPlatforms lists them")
    return found[0]


def set_platform_webhook(*, uow: ComplaintsUnitOfWork, cipher: FieldCipher, caller: Caller,
                         platform_id: str, url: str, now: datetime,
                         allow_loopback: bool = False) -> WebhookSet:
    """Point a platform's webhook at ``url`` with a new signing secret, returned once.

    ``allow_loopback``: plain http to the loopback host is taken (the embedded default).
    """
    with uow:
        official = require_official(uow.staff, caller, role=WEBHOOK_ROLE,
                                    department_code=CENTER_DEPARTMENT)
        check_webhook_url(url, allow_loopback=allow_loopback)
        _platform(uow, platform_id)
        secret = new_signing_secret()
        webhook = PlatformWebhook(platform_id, url, official.id, now)
        uow.webhooks.put(webhook, sealed_secret=cipher.seal(secret.encode("ascii"),
                                                            context=platform_id))
        uow.audit.append(actor=Actor(caller.system, official.id), action="platform_webhook.set",
                         subject=f"platform/{platform_id}", at=now, details={"url": url})
        uow.commit()
    log.info("platform_webhook.set", platform=platform_id, official=official.id)
    return WebhookSet(webhook, secret)


def _readable_platform(uow: ComplaintsUnitOfWork, caller: Caller, platform_id: str) -> str:
    own = uow.platforms.of_system(caller.system)
    if own is not None:
        if platform_id and platform_id != own.id:
            raise PermissionDenied(
                f"system {caller.system} is platform {own.id}'s: it reads only that "
                "platform's events")
        return own.id
    # Not a platform's system, yet the registry lets it call: the center's console, for an
    # operator of the center (as SetPlatformWebhook), never anonymously.
    require_official(uow.staff, caller, role=WEBHOOK_ROLE, department_code=CENTER_DEPARTMENT)
    if not platform_id:
        raise InvalidArgument(
            f"system {caller.system} is no platform's: name the platform whose events to read",
            violations=[FieldViolation("platform_id", "required for a system that is no "
                                                      "platform's")])
    return _platform(uow, platform_id).id


def list_platform_events(*, uow: ComplaintsUnitOfWork, caller: Caller, platform_id: str,
                         requested_size: int, page_token: str) -> PlatformEventPage:
    """A platform's events after the cursor, in the order they were numbered.

    A platform's system reads its own; another system allowed to call names the platform.
    """
    size = page_size(requested_size)
    after = after_number(page_token)
    with uow:
        readable = _readable_platform(uow, caller, platform_id)
        rows = uow.platform_events.after(readable, sequence=after, limit=rows_to_fetch(size))
    events = rows[:size]
    token = encode_token(events[-1].sequence) if events else page_token
    return PlatformEventPage(events, token, more=len(rows) > size)


@dataclass(frozen=True)
class _Target:
    event: PlatformEvent
    url: str
    secret: str


def _target(engine: Engine, cipher: FieldCipher, event_id: str) -> _Target | Delivery:
    with ComplaintsUnitOfWork(engine, write=False) as uow:
        event = uow.platform_events.get(event_id)
        if event is None:
            raise NotFound(f"there is no platform event {event_id}",
                           violations=[FieldViolation("event_id", "unknown event")])
        if event.delivered_at is not None:
            # Delivered by an earlier attempt whose completion Temporal did not hear of.
            return Delivery(True, event.last_status)
        found = uow.webhooks.get(event.platform_id)
    if found is None:
        return Delivery(False, 0)
    webhook, sealed = found
    try:
        secret = cipher.open(sealed, context=webhook.platform_id).decode("ascii")
    except FieldCipherError as error:
        raise WebhookNotDelivered(
            f"platform {webhook.platform_id}'s signing secret does not open with this "
            "service's field key: an operator must restore the key or set the webhook again",
        ) from error
    return _Target(event, webhook.url, secret)


@dataclass(frozen=True)
class _Checked:
    #: Why the URL may not be delivered to now; "" if it may.
    refusal: str
    #: The addresses its host name resolved to and that were checked, in the resolver's
    #: order: the delivery connects to these and to nothing else. Empty for a literal
    #: address (the URL is posted as it is) or a refusal.
    addresses: tuple[str, ...] = ()


async def _check(url: str, *, allow_loopback: bool, resolve: Resolve) -> _Checked:
    """The URL rules of SetPlatformWebhook under the setting in force, then each address
    its host resolves to, judged as the same address written in the URL would be
    (``address_refusal``). A name is looked up once; a literal address is not."""
    try:
        check_webhook_url(url, allow_loopback=allow_loopback)
    except InvalidArgument as refused:
        return _Checked(refused.message)
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        return _Checked("")
    except ValueError:
        pass
    addresses = await resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
    checked: list[str] = []
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        refusal = address_refusal(address, allow_loopback=allow_loopback)
        if refusal:
            return _Checked(f"webhook url's host {host} resolves to {address}: {refusal}")
        if str(address) not in checked:
            checked.append(str(address))
    if not checked:
        # getaddrinfo raises rather than answer nothing; a resolver that answers nothing is
        # an outage like one that fails: retried.
        raise OSError(f"{host} resolved to no address")
    return _Checked("", tuple(checked))


async def _refusal(url: str, *, allow_loopback: bool, resolve: Resolve) -> str:
    """Why ``url`` may not be delivered to now; "" if it may (``_check``)."""
    return (await _check(url, allow_loopback=allow_loopback, resolve=resolve)).refusal


async def _post_pinned(client: httpx.AsyncClient, url: str, addresses: tuple[str, ...], *,
                       content: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST to ``url`` at the checked ``addresses``, never resolving its host again.

    Each try goes to the URL with its host replaced by one address (httpx brackets an
    IPv6 one), with the original Host header and the name as TLS server name
    (``sni_hostname``), so the certificate is still verified against the name. The
    addresses are tried in the resolver's order, the next only when connecting to one
    failed (nothing was sent). No addresses: a literal address, posted as it is.
    """
    if not addresses:
        return await client.post(url, content=content, headers=headers)
    named = httpx.URL(url)
    pinned_headers = {**headers, "host": named.netloc.decode("ascii")}
    extensions = {"sni_hostname": named.raw_host.decode("ascii")}
    for address in addresses[:-1]:
        try:
            return await client.post(named.copy_with(host=address), content=content,
                                     headers=pinned_headers, extensions=extensions)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            log.info("platform_event.address_unreachable", address=address,
                     error=type(error).__name__)
    return await client.post(named.copy_with(host=addresses[-1]), content=content,
                             headers=pinned_headers, extensions=extensions)


def _record_refusal(engine: Engine, event: PlatformEvent, reason: str) -> None:
    with ComplaintsUnitOfWork(engine) as uow:
        uow.audit.append(actor=Actor(DELIVERY_ACTOR), action=DELIVERY_REFUSED,
                         subject=f"platform/{event.platform_id}", at=datetime.now(UTC),
                         details={"event_id": event.event_id,
                                  "case_number": event.case_number, "reason": reason})
        uow.commit()


def _record_attempt(engine: Engine, event_id: str, *, status: int,
                    delivered_at: datetime | None) -> None:
    with ComplaintsUnitOfWork(engine) as uow:
        uow.platform_events.record_attempt(event_id, status=status, delivered_at=delivered_at)
        uow.commit()


async def deliver(event_id: str, *, engine: Engine, cipher: FieldCipher,
                  client: httpx.AsyncClient, allow_loopback: bool = False,
                  resolve: Resolve = resolve_host) -> Delivery:
    """POST one event to its platform's webhook, signed; WebhookNotDelivered unless 2xx.

    No webhook set: not delivered, and no error (the platform pulls the event).
    ``client`` must not follow redirects. The URL is checked again first (``allow_loopback``
    as the service is set now; the host's addresses by ``resolve``): refused, nothing is
    sent, the refusal is audited and FailedPrecondition raised (for good). A name that does
    not resolve now is retried as an unreachable endpoint. The POST goes to the checked
    addresses only (``_post_pinned``): the name is not resolved again.
    """
    target = await asyncio.to_thread(_target, engine, cipher, event_id)
    if isinstance(target, Delivery):
        return target
    event = target.event
    try:
        checked = await _check(target.url, allow_loopback=allow_loopback, resolve=resolve)
    except OSError as error:
        await asyncio.to_thread(_record_attempt, engine, event_id, status=0,
                                delivered_at=None)
        log.info("platform_event.not_delivered", event_id=event_id,
                 platform=event.platform_id, error=type(error).__name__)
        raise WebhookNotDelivered(
            f"platform {event.platform_id}'s webhook host could not be resolved "
            f"({type(error).__name__})") from None
    refusal = checked.refusal
    if refusal:
        await asyncio.to_thread(_record_refusal, engine, event, refusal)
        log.warning(DELIVERY_REFUSED, event_id=event_id, platform=event.platform_id,
                    case_number=event.case_number, reason=refusal)
        raise FailedPrecondition(
            f"platform {event.platform_id}'s webhook is refused at delivery ({refusal}); "
            f"event {event_id} was not sent and stays pullable: an operator sets a webhook "
            "URL that passes (SetPlatformWebhook)")
    body = event.body
    # Standard Webhooks' timestamp is whole seconds, and is the attempt's, not the event's.
    sent_at = datetime.fromtimestamp(int(datetime.now(UTC).timestamp()), UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": event.event_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(target.secret).sign(event.event_id, sent_at, body),
    }
    try:
        response = await _post_pinned(client, target.url, checked.addresses,
                                      content=body.encode("utf-8"), headers=headers)
    except httpx.HTTPError as error:
        await asyncio.to_thread(_record_attempt, engine, event_id, status=0,
                                delivered_at=None)
        log.info("platform_event.not_delivered", event_id=event_id,
                 platform=event.platform_id, error=type(error).__name__)
        raise WebhookNotDelivered(
            f"platform {event.platform_id}'s webhook could not be reached "
            f"({type(error).__name__})") from None
    status = response.status_code
    delivered = 200 <= status < 300
    await asyncio.to_thread(_record_attempt, engine, event_id, status=status,
                            delivered_at=datetime.now(UTC) if delivered else None)
    log.info("platform_event.attempted", event_id=event_id, platform=event.platform_id,
             status=status, case_number=event.case_number)
    if not delivered:
        raise WebhookNotDelivered(
            f"platform {event.platform_id}'s webhook answered HTTP {status}")
    return Delivery(True, status)

