"""check_webhook_url: every spelling of a numeric host a resolver would read as an IPv4
address is refused unless canonical, and link-local in every spelling (attack8's SSRF
spellings)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any, cast

import httpx
import pytest
from sqlalchemy.engine import Engine

from kernel.errors import InvalidArgument
from kernel.fieldcipher import FieldCipher
from services.complaints.activities import PlatformDeliveryActivities
from services.complaints.app.webhooks import (
    Resolve,
    _check,
    _post_pinned,
    _refusal,
    resolve_host,
)
from services.complaints.domain.webhooks import address_refusal, check_webhook_url

REFUSED = [
    # Decimal, hex, octal and short forms of 127.0.0.1 and of 169.254.169.254.
    "https://2130706433/hook", "https://0x7f000001/hook", "https://0x7f.0.0.1/hook",
    "https://0177.0.0.1/hook", "https://127.1/hook", "https://127.0.1/hook",
    "https://2852039166/hook", "https://0xa9fea9fe/hook", "https://0251.0376.0251.0376/hook",
    "https://169.254.43518/hook", "https://169.254.169.254./hook",
    "https://010.0.0.1/hook", "https://1.2.3.04/hook",
    # Link-local, plain and inside IPv6.
    "https://169.254.169.254/latest/meta-data", "https://[fe80::1]/hook",
    "https://[fe80::1%25eth0]/hook", "https://[::ffff:169.254.169.254]/hook",
    "https://[::ffff:a9fe:a9fe]/hook", "https://[::ffff:127.0.0.1]/hook",
    "https://[::169.254.169.254]/hook", "https://[2002:a9fe:a9fe::1]/hook",
    "https://[64:ff9b::a9fe:a9fe]/hook", "https://[64:ff9b::7f00:1]/hook",
    "http://[::ffff:127.0.0.1]:8080/hook",
    # Unspecified and multicast.
    "https://0.0.0.0/hook", "https://0/hook", "https://[::]/hook", "https://224.0.0.1/hook",
    # Plain http beyond the loopback host.
    "http://example.org/hook", "http://127.1/hook", "http://2130706433/hook",
]

ALLOWED = [
    "https://platform.example.org/hooks/govhall", "https://203.0.113.7/hook",
    "https://[2001:db8::7]/hook", "http://127.0.0.1:8080/hook", "http://[::1]:8080/hook",
    "http://localhost:8080/hook", "https://hook.example.org:8443/x", "https://a1.example/",
    "https://10.0.0.1/hook",
]


@pytest.mark.parametrize("url", REFUSED)
def test_numeric_and_link_local_spellings_are_refused(url: str) -> None:
    with pytest.raises(InvalidArgument):
        check_webhook_url(url, allow_loopback=True)


@pytest.mark.parametrize("url", ALLOWED)
def test_canonical_hosts_are_taken(url: str) -> None:
    assert check_webhook_url(url, allow_loopback=True) == url


@pytest.mark.parametrize("url", [u for u in ALLOWED if u.startswith("http:")])
def test_without_the_loopback_setting_plain_http_is_refused_even_to_loopback(
        url: str) -> None:
    with pytest.raises(InvalidArgument, match="must use https"):
        check_webhook_url(url)
    with pytest.raises(InvalidArgument, match="must use https"):
        check_webhook_url(url, allow_loopback=False)


@pytest.mark.parametrize("url", [u for u in ALLOWED if u.startswith("https:")])
def test_without_the_loopback_setting_https_is_taken_as_before(url: str) -> None:
    assert check_webhook_url(url, allow_loopback=False) == url


@pytest.mark.parametrize("url", [
    "https://127.0.0.1:7233/hook", "https://127.8.9.10/hook", "https://[::1]/hook",
    "https://localhost/hook", "https://LOCALHOST./hook", "https://temporal.svc/hook",
    "https://review.govhall.svc.cluster.local:50052/x", "https://kubernetes/hook",
    "https://kubernetes.default.svc/hook", "https://app.localhost/hook",
])
def test_without_the_loopback_setting_this_host_and_cluster_names_are_refused(
        url: str) -> None:
    with pytest.raises(InvalidArgument, match="may not point at"):
        check_webhook_url(url)
    # The embedded default and the tests take them (their platforms run beside them).
    assert check_webhook_url(url, allow_loopback=True) == url


async def test_deliveries_take_no_proxy_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTPS_PROXY/ALL_PROXY in the worker's environment would send every signed event
    to the proxy; the delivery client reads nothing from the environment."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    delivery = PlatformDeliveryActivities(cast(Engine, None), cast(FieldCipher, None),
                                          timeout_seconds=1.0)
    client = delivery._http()
    try:
        assert client.trust_env is False
        assert client._mounts == {}
    finally:
        await client.aclose()


def _resolver(*addresses: str) -> Resolve:
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)
    return resolve


@pytest.mark.parametrize(("addresses", "allow_loopback", "refused"), [
    (("203.0.113.7",), False, ""),
    (("10.0.0.8",), False, ""),
    (("203.0.113.7", "127.0.0.1"), False, "resolves to 127.0.0.1: the loopback network"),
    (("::1",), False, "resolves to ::1: the loopback network"),
    (("127.0.0.1",), True, ""),
    (("169.254.169.254",), True, "resolves to 169.254.169.254: a link-local"),
    (("fe80::1%eth0",), False, "resolves to fe80::1: a link-local"),
    (("0.0.0.0",), False, "resolves to 0.0.0.0: a link-local, unspecified"),
])
async def test_at_delivery_every_address_the_name_resolves_to_is_checked(
        addresses: tuple[str, ...], allow_loopback: bool, refused: str) -> None:
    reason = await _refusal("https://hooks.example.org/hook", allow_loopback=allow_loopback,
                            resolve=_resolver(*addresses))
    assert (refused in reason) if refused else reason == ""


async def test_at_delivery_the_setting_in_force_decides_and_literals_are_not_resolved(
        ) -> None:
    async def never(host: str, port: int) -> list[str]:
        raise AssertionError("a literal address is not looked up")
    loopback = "http://127.0.0.1:8080/hook"
    assert await _refusal(loopback, allow_loopback=True, resolve=never) == ""
    assert "must use https" in await _refusal(loopback, allow_loopback=False, resolve=never)
    assert "may not point at this host" in await _refusal(
        "https://hooks.default.svc/hook", allow_loopback=False, resolve=never)


#: IPv6 addresses carrying an IPv4 one, each reaching this host or the metadata service.
EMBEDDED = [
    "::ffff:127.0.0.1",                      # IPv4-mapped loopback
    "::ffff:169.254.169.254",                # IPv4-mapped cloud metadata
    "::ffff:0.0.0.0",                        # IPv4-mapped unspecified (Linux: this host)
    "::ffff:10.0.0.1",                       # IPv4-mapped, even of an address allowed as is
    "::127.0.0.1",                           # IPv4-compatible
    "::169.254.169.254",                     # IPv4-compatible
    "2002:7f00:1::1",                        # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",                     # 6to4 of 169.254.169.254
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo (server 65.54.227.120)
    "64:ff9b::7f00:1",                       # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",                    # NAT64 of 169.254.169.254
]


@pytest.mark.parametrize("allow_loopback", [False, True])
@pytest.mark.parametrize("address", EMBEDDED)
async def test_a_name_resolving_to_an_ipv6_address_carrying_an_ipv4_one_is_refused(
        address: str, allow_loopback: bool) -> None:
    """Judged as the literal is: the same reason, whatever the loopback setting."""
    reason = await _refusal("https://hooks.example.org/hook", allow_loopback=allow_loopback,
                            resolve=_resolver("203.0.113.7", address))
    written = address_refusal(ipaddress.ip_address(address), allow_loopback=allow_loopback)
    assert "may not carry an IPv4 one" in written
    assert reason == (f"webhook url's host hooks.example.org resolves to "
                      f"{ipaddress.ip_address(address)}: {written}")
    # Written in hex (a dotted tail is refused earlier, as a numeric host).
    with pytest.raises(InvalidArgument) as literal:
        check_webhook_url(f"https://[{ipaddress.ip_address(address)}]/hook",
                          allow_loopback=allow_loopback)
    assert written in literal.value.message


@pytest.mark.parametrize("address", ["203.0.113.7", "10.0.0.1", "2001:db8::7", "::1",
                                     "127.0.0.1", "169.254.169.254", "fe80::1", "::",
                                     "224.0.0.1", "ff02::1"])
@pytest.mark.parametrize("allow_loopback", [False, True])
async def test_a_resolved_address_and_the_same_literal_get_the_same_answer(
        address: str, allow_loopback: bool) -> None:
    resolved = await _refusal("https://hooks.example.org/hook",
                              allow_loopback=allow_loopback, resolve=_resolver(address))
    rule = address_refusal(ipaddress.ip_address(address), allow_loopback=allow_loopback)
    assert (rule in resolved) if rule else resolved == ""
    literal = "https://" + (f"[{address}]" if ":" in address else address) + "/hook"
    if rule:
        with pytest.raises(InvalidArgument) as refused:
            check_webhook_url(literal, allow_loopback=allow_loopback)
        # A loopback literal is refused by its name first (127.0.0.1, ::1 are loopback names).
        assert rule in refused.value.message or "this host itself" in refused.value.message
    else:
        assert check_webhook_url(literal, allow_loopback=allow_loopback) == literal


async def test_the_resolver_order_is_kept_without_repeats(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Not sorted: the delivery tries the addresses in the order the resolver gave."""
    answers = ["203.0.113.9", "2001:db8::7", "198.51.100.1", "203.0.113.9"]

    async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port)) for a in answers]
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    assert await resolve_host("hooks.example.org", 443) == [
        "203.0.113.9", "2001:db8::7", "198.51.100.1"]
    checked = await _check("https://hooks.example.org/hook", allow_loopback=False,
                           resolve=resolve_host)
    assert checked.refusal == ""
    assert checked.addresses == ("203.0.113.9", "2001:db8::7", "198.51.100.1")


def _recording(answer: dict[str, int | Exception]) -> tuple[httpx.AsyncClient,
                                                            list[httpx.Request]]:
    """A client whose transport answers by the request's host (a status, or raises)."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        outcome = answer[request.url.host]
        if isinstance(outcome, Exception):
            raise outcome
        return httpx.Response(outcome)
    return httpx.AsyncClient(transport=httpx.MockTransport(handle)), seen


async def test_the_post_goes_to_the_checked_address_with_the_names_host_and_sni() -> None:
    client, seen = _recording({"2001:db8::7": 200})
    async with client:
        response = await _post_pinned(client, "https://Hooks.Example.org:8443/in?x=1",
                                      ("2001:db8::7",), content=b"{}",
                                      headers={"webhook-id": "msg_1"})
    assert response.status_code == 200
    [sent] = seen
    assert str(sent.url) == "https://[2001:db8::7]:8443/in?x=1"
    assert sent.headers["host"] == "hooks.example.org:8443"
    assert sent.headers["webhook-id"] == "msg_1"
    assert sent.extensions["sni_hostname"] == "hooks.example.org"
    assert sent.content == b"{}"


async def test_plain_http_to_a_name_gets_its_host_header() -> None:
    client, seen = _recording({"127.0.0.1": 204})
    async with client:
        await _post_pinned(client, "http://localhost:8080/hook", ("127.0.0.1",),
                           content=b"{}", headers={})
    [sent] = seen
    assert str(sent.url) == "http://127.0.0.1:8080/hook"
    assert sent.headers["host"] == "localhost:8080"


async def test_the_next_address_is_tried_only_when_connecting_failed() -> None:
    refused = httpx.ConnectError("refused")
    client, seen = _recording({"203.0.113.1": refused, "203.0.113.2": 500,
                               "203.0.113.3": 200})
    async with client:
        response = await _post_pinned(client, "https://hooks.example.org/hook",
                                      ("203.0.113.1", "203.0.113.2", "203.0.113.3"),
                                      content=b"{}", headers={})
    # The second answered (500): that is the platform's answer, the third is not tried.
    assert response.status_code == 500
    assert [r.url.host for r in seen] == ["203.0.113.1", "203.0.113.2"]


async def test_when_no_checked_address_connects_the_last_error_is_raised() -> None:
    client, seen = _recording({"203.0.113.1": httpx.ConnectError("refused"),
                               "203.0.113.2": httpx.ConnectError("refused")})
    async with client:
        with pytest.raises(httpx.ConnectError):
            await _post_pinned(client, "https://hooks.example.org/hook",
                               ("203.0.113.1", "203.0.113.2"), content=b"{}", headers={})
    assert [r.url.host for r in seen] == ["203.0.113.1", "203.0.113.2"]


async def test_a_literal_address_is_posted_as_it_is() -> None:
    async def never(host: str, port: int) -> list[str]:
        raise AssertionError("a literal address is not looked up")
    url = "https://203.0.113.7:8443/hook"
    checked = await _check(url, allow_loopback=False, resolve=never)
    assert checked.refusal == "" and checked.addresses == ()
    client, seen = _recording({"203.0.113.7": 200})
    async with client:
        await _post_pinned(client, url, checked.addresses, content=b"{}", headers={})
    [sent] = seen
    assert str(sent.url) == url and sent.headers["host"] == "203.0.113.7:8443"
    assert "sni_hostname" not in sent.extensions
