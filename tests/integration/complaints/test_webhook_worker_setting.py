"""The webhook URL checked again at delivery by the activity *the worker hosts*
(services/complaints/activities.py ``activities``), not one the test builds with the
setting it chooses."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from services.complaints.activities import activities
from tests.integration.complaints.test_platform_webhooks import (  # noqa: F401
    HOTLINE,
    HOTLINE_ID,
    _case,
    _emit,
    _set_webhook,
    _table,
    production,
)
from tests.support import ServiceUnderTest
from workflows.complaint_contract import PlatformDelivery


async def test_the_hosted_delivery_refuses_a_name_resolving_here_under_the_services_setting(
        production: ServiceUnderTest) -> None:  # noqa: F811
    name = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(name, 443)}
    if not all(ipaddress.ip_address(a).is_loopback for a in addresses):
        pytest.skip(f"this machine's name {name} does not resolve to the loopback network")
    case = await _case(production, HOTLINE, "HL-S14-1")
    await _set_webhook(production, f"https://{name}:8443/hook")
    event_id = _emit(production, HOTLINE_ID, case)
    [deliver] = [a for a in activities(production.running.engine, production.settings)
                 if getattr(a, "__temporal_activity_definition").name
                 == "complaints.deliver_platform_event"]
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(deliver, PlatformDelivery(event_id))
    assert failed.value.non_retryable and failed.value.type == "FailedPrecondition"
