"""Activities the complaints service hosts on its own task queue (govhall-complaints).

Workflows route complaints through these, so a workflow never touches a
database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine
from temporalio import activity

from kernel.activities import run_use_case, translated_failures
from kernel.fieldcipher import FieldCipher, field_cipher
from services.complaints.app import handlers, webhooks
from services.complaints.db.repository import ComplaintsUnitOfWork
from services.complaints.settings import complainant_key_path
from workflows.complaint_contract import (
    DELIVER_PLATFORM_EVENT,
    DeliveryResult,
    PlatformDelivery,
)


@dataclass(frozen=True)
class RouteComplaintInput:
    category_code: str


@dataclass(frozen=True)
class ResponsibleDepartment:
    """Who handles a complaint of the category, and under which rule.

    A case keeps ``rule_version`` so that it can show the rule it was routed
    under after the category is re-pointed.
    """

    category_code: str
    department_code: str
    department_name: str
    rule_version: int


class ComplaintsActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn(name="complaints.route_complaint")
    async def route_complaint(self, request: RouteComplaintInput) -> ResponsibleDepartment:
        # Unknown category or a department gone from the directory fails for good:
        # retrying cannot help, a dispatcher has to act.
        routing = await run_use_case(
            handlers.route_complaint, uow=ComplaintsUnitOfWork(self._engine, write=False),
            category_code=request.category_code)
        return ResponsibleDepartment(
            category_code=routing.category.code, department_code=routing.department.code,
            department_name=routing.department.name, rule_version=routing.category.rule_version)


class PlatformDeliveryActivities:
    """POSTs platform events to the platforms' webhooks (Standard Webhooks)."""

    def __init__(self, engine: Engine, cipher: FieldCipher, *,
                 timeout_seconds: float = 10.0) -> None:
        self._engine = engine
        self._cipher = cipher
        self._timeout = httpx.Timeout(timeout_seconds)

    @activity.defn(name=DELIVER_PLATFORM_EVENT)
    async def deliver_platform_event(self, delivery: PlatformDelivery) -> DeliveryResult:
        # A non-2xx answer or a network error raises, and Temporal retries (DELIVERY_RETRY)
        # under the same webhook-id; an unknown event fails for good. Redirects are not
        # followed: the operator chose the URL, and a redirect could aim the signed POST
        # anywhere, inside the center's network included.
        with translated_failures():
            async with httpx.AsyncClient(timeout=self._timeout,
                                         follow_redirects=False) as client:
                result = await webhooks.deliver(delivery.event_id, engine=self._engine,
                                                cipher=self._cipher, client=client)
        return DeliveryResult(delivered=result.delivered, status_code=result.status_code)


def activities(engine: Engine, settings: Any) -> Sequence[Callable[..., Any]]:
    delivery = PlatformDeliveryActivities(
        engine, field_cipher(complainant_key_path(settings.pki_dir)),
        timeout_seconds=settings.webhook_timeout_seconds)
    return [ComplaintsActivities(engine).route_complaint, delivery.deliver_platform_event]
