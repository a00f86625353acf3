"""check_webhook_url: every spelling of a numeric host a resolver would read as an IPv4
address is refused unless canonical, and link-local in every spelling (attack8's SSRF
spellings)."""

from __future__ import annotations

from typing import cast

import pytest
from sqlalchemy.engine import Engine

from kernel.errors import InvalidArgument
from kernel.fieldcipher import FieldCipher
from services.complaints.activities import PlatformDeliveryActivities
from services.complaints.app.webhooks import Resolve, _refusal
from services.complaints.domain.webhooks import check_webhook_url

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
