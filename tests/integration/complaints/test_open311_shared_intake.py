"""The running complaints service hands its one intake group commit to its Open311 server
(services/complaints/main.py): posts over HTTPS and gRPC pushes are taken in by the same
group commit, so one writer makes batches of both."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local.processes import free_ports
from govhall.complaints.v1 import complaints_pb2 as pb
from govhall.complaints.v1 import complaints_pb2_grpc
from kernel.groupcommit import GroupCommit
from kernel.pki import ca_cert_path
from services.complaints import main
from services.complaints.app import cases
from services.complaints.main import DEFINITION
from tests.integration.complaints.test_open311 import HOTLINE, Facade, _case
from tests.support import fresh_database_url, service_under_test


class Made:
    """The intake group commits the service's registration made, and the external id of
    every item submitted to each."""

    def __init__(self) -> None:
        self.commits: list[GroupCommit[cases.Push, cases.Submitted]] = []
        self.submitted: list[list[str]] = []

    def group_intake(self, **kwargs: Any) -> GroupCommit[cases.Push, cases.Submitted]:
        commit = cases.group_intake(**kwargs)
        seen: list[str] = []
        submit: Callable[[cases.Push], Awaitable[cases.Submitted]] = commit.submit

        async def recorded(push: cases.Push) -> cases.Submitted:
            seen.append(push.submission.external_id)
            return await submit(push)

        commit.submit = recorded  # type: ignore[method-assign,assignment]
        self.commits.append(commit)
        self.submitted.append(seen)
        return commit


@pytest.fixture
async def spied(backend: str, tmp_path: Path, pki_dir: Path,
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Facade, Made]]:
    """The complaints service with its Open311 façade, its intake group commit watched."""
    made = Made()
    monkeypatch.setattr(main, "group_intake", made.group_intake)
    url = fresh_database_url(backend, "complaints", tmp_path)
    port = free_ports(1)[0]
    key_file = tmp_path / "open311" / "api-keys.json"
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  open311_port=port, open311_api_keys_file=key_file) as service:
        context = ssl.create_default_context(cafile=str(ca_cert_path(pki_dir)))
        keys = json.loads(key_file.read_text())
        yield Facade(service, f"https://127.0.0.1:{port}/open311/v2", keys, key_file,
                     context), made


async def test_posts_and_grpc_pushes_are_taken_in_by_the_one_group_commit(
        spied: tuple[Facade, Made]) -> None:
    facade, made = spied
    posts = [_case(**{"attribute[external_id]": f"SHARED-POST-{n}"}) for n in range(4)]
    pushes = [pb.SubmitComplaintRequest(
        external_id=f"SHARED-PUSH-{n}", kind=pb.COMPLAINT_KIND_COMPLAINT,
        category_code="SC-01", content=f"第{n}件。", complainant_name="测试群众",
        complainant_phone="199-0000-0001") for n in range(4)]
    async with facade.service.channel("hotline-12345") as channel, facade.client() as client:
        stub = complaints_pb2_grpc.ComplaintsServiceStub(channel)
        answers = await asyncio.gather(
            *(client.post("/requests.json", data={"api_key": facade.keys[HOTLINE]} | post)
              for post in posts),
            *(stub.SubmitComplaint(push) for push in pushes))
    posted = [a for a in answers if isinstance(a, httpx.Response)]
    assert [reply.status_code for reply in posted] == [200] * 4, [r.text for r in posted]
    assert all(isinstance(a, pb.SubmitComplaintResponse) for a in answers[4:])
    # The registration made one group commit, and both ways in submitted to it.
    assert len(made.commits) == 1
    assert sorted(made.submitted[0]) == sorted(
        [f"SHARED-POST-{n}" for n in range(4)] + [f"SHARED-PUSH-{n}" for n in range(4)])
