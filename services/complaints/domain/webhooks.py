"""What a platform is told about its cases, and where it may be told it.

A platform hears of every reply and status change of its cases twice over:
POSTed to the webhook URL an operator set for it, as Standard Webhooks
(webhook-id, webhook-timestamp, HMAC-SHA256 webhook-signature), and in a
feed it pulls with a cursor. Both carry the same event under the same id.

Which URLs a webhook may have, and why (see ``check_webhook_url``):

- ``https`` anywhere, ``http`` only to the loopback host (127.0.0.1, ::1,
  localhost), and only where the setting ``webhook_allow_loopback``
  (``GOVHALL_COMPLAINTS_WEBHOOK_ALLOW_LOOPBACK``) allows it: off by default
  and in production, on in the embedded default. The body carries the reply
  to a citizen; over plain HTTP any network hop could read or change it (the
  signature tells the receiver of a change, it hides nothing). Loopback
  traffic never leaves the machine, so a receiver beside the service (the
  embedded default, tests) may use http; in production nothing of a platform
  runs beside the service, and a plain-http URL to the service's own host
  would only reach the center's internal endpoints.
- No user name or password in the URL: a credential in a URL ends up in
  logs, in the operator console and in whatever reads the table; the
  signature is how the platform knows the sender.
- No literal address of the link-local range (169.254.0.0/16, where cloud
  metadata services answer, and fe80::/10), the unspecified address or a
  multicast one. Setting a URL makes the complaints service send requests
  from inside the center's network (server-side request forgery); with
  https only, redirects never followed (the sender's rule) and these ranges
  refused, a URL cannot point the service at a plaintext internal endpoint.
  Nor an IPv6 address carrying an IPv4 one (mapped, compatible, 6to4,
  Teredo, NAT64): see ``address_refusal``, the one rule for a literal
  address here and for each address a host name resolves to at delivery
  (``app.webhooks``), which is where a name is caught.
- At most ``MAX_URL_LENGTH`` characters, no fragment, no whitespace.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from kernel.errors import FieldViolation, InvalidArgument

MAX_URL_LENGTH = 2048
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
#: Names that only ever reach the center's own cluster, never a platform.
CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local", ".localhost")

#: The fields each kind of event carries beside the case's number and the platform's
#: own external id. Codes, dates and the reply: never the complainant's name or phone.
EVENT_FIELDS: dict[str, frozenset[str]] = {
    "complaint.status_changed": frozenset({"status", "department_code"}),
    "complaint.replied": frozenset({"reply", "replied_at", "department_code"}),
}
#: Fields every event's data holds, set from the case itself.
CASE_FIELDS = frozenset({"case_number", "external_id"})
#: Standard Webhooks' message ids: a prefix and 26 base32 characters.
EVENT_ID_SHAPE = re.compile(r"^msg_[a-z2-7]{26}$")


@dataclass(frozen=True)
class PlatformWebhook:
    """Where a platform's events are POSTed; its signing secret is kept apart, sealed."""

    platform_id: str
    url: str
    set_by_official_id: str
    set_at: datetime


@dataclass(frozen=True)
class PlatformEvent:
    """One thing a platform is told about one of its cases."""

    event_id: str
    platform_id: str
    sequence: int
    case_number: str
    event_type: str
    data: dict[str, str]
    created_at: datetime
    delivered_at: datetime | None
    attempts: int
    last_status: int

    @property
    def body(self) -> str:
        """The JSON body POSTed for the event, the same on every attempt."""
        return event_body(self.event_type, self.data, self.created_at)


def event_body(event_type: str, data: dict[str, str], at: datetime) -> str:
    """The Standard Webhooks payload shape: type, timestamp, data."""
    return json.dumps({"type": event_type,
                       "timestamp": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                       "data": data}, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"))


def event_data(event_type: str, data: dict[str, str], *, case_number: str,
               external_id: str, sequence: int) -> dict[str, str]:
    """The data an event carries; ValueError for a kind or a field this module does not know.

    ``sequence`` is the event's number among its platform's events (decimal text), so a
    receiver can put deliveries that arrive in parallel back in order.

    A caller passing something else is a bug in the caller, and refusing it keeps
    anything not listed here (a complainant's name, say) out of what platforms receive.
    """
    fields = EVENT_FIELDS.get(event_type)
    if fields is None:
        raise ValueError(f"unknown platform event type {event_type!r}")
    if set(data) != fields or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"a {event_type} event carries exactly the text fields "
                         f"{sorted(fields)}, not {sorted(data)}")
    return {**data, "case_number": case_number, "external_id": external_id,
            "sequence": str(sequence)}


def _bad_url(reason: str) -> InvalidArgument:
    return InvalidArgument(f"webhook url {reason}",
                           violations=[FieldViolation("url", reason)])


#: The last label of a host a resolver reads as an IPv4 address (WHATWG URL: a number).
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")


def _canonical_ipv4(host: str) -> bool:
    try:
        return str(ipaddress.IPv4Address(host)) == host
    except ValueError:
        return False


#: NAT64's well-known prefix (RFC 6052): the last 32 bits are an IPv4 address a NAT64
#: gateway forwards to.
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_refusal(address: IPAddress, *, allow_loopback: bool = False) -> str:
    """Why a webhook may not reach ``address``; "" if it may.

    One rule for a literal address in the URL (``check_webhook_url``) and for each
    address a host name resolves to at delivery, so a name is judged as its address
    written out would be. An IPv6 address carrying an IPv4 one (IPv4-mapped
    ``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, 6to4 ``2002::/16``, Teredo
    ``2001::/32``, NAT64 ``64:ff9b::/96``) is refused whatever the IPv4 address: the
    ``is_*`` properties do not look inside it (Python 3.11), while the host reaches
    the IPv4 address (a mapped ``::ffff:127.0.0.1`` is this host).
    """
    if isinstance(address, ipaddress.IPv6Address) and (
            address.ipv4_mapped is not None or address.sixtofour is not None
            or address.teredo is not None or address in NAT64_PREFIX
            or (int(address) >> 32 == 0 and not address.is_loopback
                and not address.is_unspecified)):
        return ("an IPv6 address may not carry an IPv4 one (IPv4-mapped, IPv4-compatible, "
                "6to4, Teredo or NAT64)")
    if address.is_loopback and not allow_loopback:
        return "the loopback network is this host itself"
    if address.is_link_local or address.is_unspecified or address.is_multicast:
        return "a link-local, unspecified or multicast address"
    return ""


def check_webhook_url(url: str, *, allow_loopback: bool = False) -> str:
    """``url`` if a webhook may have it; InvalidArgument saying why not (module docstring).

    ``allow_loopback``: whether plain http to the loopback host is taken.
    """
    if not url:
        raise _bad_url("is required")
    if len(url) > MAX_URL_LENGTH:
        raise _bad_url(f"is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise _bad_url("holds whitespace or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError as error:
        raise _bad_url("is not a URL") from error
    if parts.scheme not in ("https", "http") or not host:
        raise _bad_url("must be an https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise _bad_url("may not hold a user name or password: the signature identifies the "
                       "sender")
    if parts.fragment:
        raise _bad_url("may not hold a fragment")
    if parts.scheme == "http" and not allow_loopback:
        raise _bad_url("must use https: this service takes no plain http webhook (not even "
                       "to the loopback host)")
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise _bad_url("must use https: plain http is allowed only to the loopback host "
                       "(127.0.0.1, ::1, localhost)")
    bare = host.rstrip(".").lower()
    if not allow_loopback and (bare in LOOPBACK_HOSTS or bare.endswith(CLUSTER_SUFFIXES)
                               or bare == "kubernetes"):
        raise _bad_url("may not point at this host itself or a name inside its cluster "
                       "(loopback, localhost, *.svc, *.cluster.local): a platform is "
                       "reached from outside")
    last_label = host.rstrip(".").rsplit(".", 1)[-1]
    if _NUMERIC_LABEL.fullmatch(last_label) and not _canonical_ipv4(host):
        # 2130706433, 0x7f.1, 0177.0.0.1, 127.1, 169.254.169.254.: resolvers read each as
        # an IPv4 address, so each is refused unless written the one canonical way.
        raise _bad_url("may name an IPv4 address only as four decimal numbers (a.b.c.d)")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return url
    refusal = address_refusal(address, allow_loopback=allow_loopback)
    if refusal:
        raise _bad_url(f"may not point at {address}: {refusal}")
    return url
