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


class Recorded:
    """The façade's application on the service's database, its posts taken in by a group
    commit that records the external ids of each batch it writes."""

    def __init__(self, facade: Facade) -> None:
        self.engine = make_engine(facade.service.settings.resolved_database_url())
        self.cipher = field_cipher(complainant_key_path(facade.service.pki_dir))
        self.batches: list[list[str]] = []
        self.key = facade.keys[HOTLINE]
        self.app = open311_app(self.engine, cipher=self.cipher, intake=GroupCommit(self.write))

    def write(self, pushes: Sequence[cases.Push]) -> list[cases.Submitted | Exception]:
        self.batches.append([push.submission.external_id for push in pushes])
        return cases.submit_complaints(uow=lambda: ComplaintsUnitOfWork(self.engine),
                                       cipher=self.cipher, pushes=pushes,
                                       now=datetime.now(UTC))

    async def post_all(self, posts: list[dict[str, str]]) -> list[httpx.Response]:
        """Every posting at once, each with the hotline's key."""
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                     base_url=f"http://open311.test{BASE_PATH}") as client:
            return list(await asyncio.gather(*(
                client.post("/requests.json", data={"api_key": self.key} | post)
                for post in posts)))

    def stored(self, prefix: str) -> list[tuple[str, str]]:
        """(external id, description) of the cases whose external id starts so."""
        with self.engine.connect() as connection:
            return sorted((row.external_id, row.content) for row in connection.execute(
                sa.select(tables.complaint_cases).where(
                    tables.complaint_cases.c.external_id.like(f"{prefix}%"))))


async def test_concurrent_posts_are_taken_in_by_the_group_commit_in_shared_batches(
        facade: Facade) -> None:
    recorded = Recorded(facade)
    posts = [_case(**{"attribute[external_id]": f"O311-GC-{n}"}) for n in range(8)]
    # The first posting again (the same case), and one for a service that does not exist.
    posts += [posts[0], _case(service_code="NO-SUCH")]
    try:
        replies = await recorded.post_all(posts)
        stored = [external_id for external_id, _ in recorded.stored("O311-GC-")]
    finally:
        recorded.engine.dispose()

    assert [reply.status_code for reply in replies] == [200] * 9 + [404]
    numbers = [reply.json()[0]["service_request_id"] for reply in replies[:9]]
    assert len(set(numbers[:8])) == 8
    assert numbers[8] == numbers[0]
    # Every accepted post went through the group commit, and posts shared batches.
    assert sorted(external_id for batch in recorded.batches for external_id in batch) == \
        sorted([f"O311-GC-{n}" for n in range(8)] + ["O311-GC-0"])
    assert max(len(batch) for batch in recorded.batches) > 1
    assert stored == sorted(f"O311-GC-{n}" for n in range(8))


async def test_other_content_under_an_external_id_is_refused_and_overwrites_nothing(
        facade: Facade) -> None:
    recorded = Recorded(facade)
    first = _case(**{"attribute[external_id]": "O311-AE-1", "description": "第一次的内容。"})
    other = _case(**{"attribute[external_id]": "O311-AE-1", "description": "另一个内容。"})
    try:
        replies = await recorded.post_all(
            [first, other, _case(**{"attribute[external_id]": "O311-AE-2"})])
        stored = recorded.stored("O311-AE-")
    finally:
        recorded.engine.dispose()

    # One of the two postings of O311-AE-1 made the case; the other, saying something
    # else under its id, is refused in GeoReport's error format and changed nothing.
    statuses = [reply.status_code for reply in replies]
    assert sorted(statuses[:2]) == [200, 400] and statuses[2] == 200
    refused = replies[statuses.index(400)].json()
    assert "O311-AE-1" in refused[0]["description"]
    winner = (first, other)[statuses.index(200)]
    assert stored[0] == ("O311-AE-1", winner["description"])
    assert [external_id for external_id, _ in stored] == ["O311-AE-1", "O311-AE-2"]
    assert sum(len(batch) for batch in recorded.batches) == 3
