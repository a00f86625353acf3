"""Open311's ``POST requests`` is taken in by the intake's group commit, as gRPC's
SubmitComplaint is: concurrent posts share batches, each answered on its own, a re-post in
the same batch answered with the same case, a refused post writing nothing.

The façade's application is served in-process (httpx's ASGI transport) on the running
service's real database, with a group commit whose batches are recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa

from kernel.db import make_engine
from kernel.fieldcipher import field_cipher
from kernel.groupcommit import GroupCommit
from services.complaints.app import cases
from services.complaints.db import tables
from services.complaints.db.repository import ComplaintsUnitOfWork
from services.complaints.main import complainant_key_path
from services.complaints.open311.api import BASE_PATH, open311_app
from tests.integration.complaints.test_open311 import HOTLINE, Facade, _case, facade

__all__ = ["facade"]


async def test_concurrent_posts_are_taken_in_by_the_group_commit_in_shared_batches(
        facade: Facade) -> None:
    engine = make_engine(facade.service.settings.resolved_database_url())
    cipher = field_cipher(complainant_key_path(facade.service.pki_dir))
    batches: list[list[str]] = []

    def write(pushes: Sequence[cases.Push]) -> list[cases.Submitted | Exception]:
        batches.append([push.submission.external_id for push in pushes])
        return cases.submit_complaints(uow=lambda: ComplaintsUnitOfWork(engine),
                                       cipher=cipher, pushes=pushes, now=datetime.now(UTC))

    app = open311_app(engine, cipher=cipher, intake=GroupCommit(write))
    key = facade.keys[HOTLINE]
    posts = [_case(**{"attribute[external_id]": f"O311-GC-{n}"}) for n in range(8)]
    # The first posting again (the same case), and one for a service that does not exist.
    posts += [posts[0], _case(service_code="NO-SUCH")]
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=f"http://open311.test{BASE_PATH}") as client:
            replies = await asyncio.gather(*(
                client.post("/requests.json", data={"api_key": key} | post) for post in posts))
        with engine.connect() as connection:
            stored = sorted(connection.execute(
                sa.select(tables.complaint_cases.c.external_id).where(
                    tables.complaint_cases.c.external_id.like("O311-GC-%"))).scalars())
    finally:
        engine.dispose()

    assert [reply.status_code for reply in replies] == [200] * 9 + [404]
    numbers = [reply.json()[0]["service_request_id"] for reply in replies[:9]]
    assert len(set(numbers[:8])) == 8
    assert numbers[8] == numbers[0]
    # Every accepted post went through the group commit, and posts shared batches.
    assert sorted(external_id for batch in batches for external_id in batch) == sorted(
        [f"O311-GC-{n}" for n in range(8)] + ["O311-GC-0"])
    assert max(len(batch) for batch in batches) > 1
    assert stored == sorted(f"O311-GC-{n}" for n in range(8))
