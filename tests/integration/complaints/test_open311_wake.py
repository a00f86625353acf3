"""An Open311 post wakes the complaints outbox, as a gRPC SubmitComplaint does.

The complaints service runs as main.py wires it, pointed at a time-skipping
Temporal server, its outbox polling only once an hour: a posted case's
workflow starts within seconds only because the post woke the outbox.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

import httpx
import sqlalchemy as sa
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from deploy.local.processes import free_ports
from kernel.pki import ca_cert_path
from services.complaints.db import tables
from services.complaints.main import DEFINITION
from tests.integration.review.conftest import temporal_address
from tests.support import fresh_database_url, service_under_test
from workflows.complaint_contract import workflow_id

#: Far longer than the test may take: a start seen in the test came from a wake.
POLL_SECONDS = 3600.0
#: How long a woken outbox may take to start a case's workflow, however slow the machine.
WITHIN_SECONDS = 30.0


async def _started(engine: sa.Engine, number: str) -> None:
    """Until the case's workflow is noted as started; fails after ``WITHIN_SECONDS``."""
    def flag() -> bool:
        with engine.connect() as connection:
            return bool(connection.execute(
                sa.select(tables.complaint_cases.c.workflow_started).where(
                    tables.complaint_cases.c.case_number == number)).scalar_one())
    deadline = asyncio.get_running_loop().time() + WITHIN_SECONDS
    while not await asyncio.to_thread(flag):
        assert asyncio.get_running_loop().time() < deadline, f"{number} never started"
        await asyncio.sleep(0.05)


async def test_a_posted_case_starts_its_workflow_long_before_the_outbox_polls(
        backend: str, tmp_path: Path, pki_dir: Path,
        time_skipping: WorkflowEnvironment) -> None:
    port = free_ports(1)[0]
    key_file = tmp_path / "open311" / "api-keys.json"
    async with service_under_test(
            DEFINITION, database_url=fresh_database_url(backend, "complaints", tmp_path),
            pki_dir=pki_dir, open311_port=port, open311_api_keys_file=key_file,
            temporal_address=temporal_address(time_skipping),
            outbox_poll_seconds=POLL_SECONDS) as service:
        keys = json.loads(key_file.read_text())
        context = ssl.create_default_context(cafile=str(ca_cert_path(pki_dir)))
        engine = service.running.engine
        numbers = []
        async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}/open311/v2",
                                     verify=context, timeout=30) as client:
            # The first case may be found by the outbox's first round, at the start; the
            # second is posted after that round, while the outbox waits for its hour.
            for n in range(2):
                response = await client.post("/requests.json", data={
                    "api_key": keys["12345"], "service_code": "SC-01",
                    "lat": "41.8057", "long": "123.4315", "attribute[kind]": "complaint",
                    "first_name": "晓筠", "last_name": "欧阳", "phone": "139-2468-1357",
                    "description": f"小区门口的早餐店使用过期食材 {n}"})
                assert response.status_code == 200, response.text
                [created] = response.json()
                numbers.append(str(created["service_request_id"]))
                await _started(engine, numbers[-1])
        for number in numbers:
            described = await time_skipping.client.get_workflow_handle(
                workflow_id(number)).describe()
            assert described.status == WorkflowExecutionStatus.RUNNING
