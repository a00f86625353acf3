"""The suite started exactly as `make run` starts it, then stopped and restarted.

One runner process per test run: it starts its own Temporal dev server on
free ports, the four services and (when there are workflows) the worker.

The runner's process is driven by tests/e2e/suite.py (RunnerSuite).
"""

from __future__ import annotations

import json
import socket
import ssl
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from temporalio.api.common.v1 import Payloads
from temporalio.api.history.v1 import History

from deploy.local.chain_driver import CLERK, ChainDriver, acting
from govhall.complaints.v1 import complaints_pb2, complaints_pb2_grpc
from govhall.intake.v1 import intake_pb2, intake_pb2_grpc
from govhall.review.v1 import review_pb2, review_pb2_grpc
from govhall.trading.v1 import trading_pb2, trading_pb2_grpc
from kernel.codec import ENCODING
from kernel.temporal import SEARCH_ATTRIBUTES, TemporalSecurity, connect
from tests.e2e.suite import RunnerSuite
from tests.security.payloads import stored_payloads
from tests.support import as_official
from workflows.approval_contract import workflow_id

pytestmark = pytest.mark.e2e
SERVICES = ("intake", "review", "trading", "complaints")
#: The reviewer's opinion the chain driver sends: it must travel encrypted.
OPINION = "材料齐全，符合法定条件"


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunnerSuite]:
    var_dir = tmp_path_factory.mktemp("var")
    # A log left by an older version, readable by everyone: the runner makes it private.
    (var_dir / "log").mkdir(mode=0o755)
    (var_dir / "log" / "older.log").write_bytes(b"")
    (var_dir / "log" / "older.log").chmod(0o644)
    running = RunnerSuite.create(var_dir)
    running.start()
    yield running
    if running.running:
        running.stop()


async def test_every_service_is_serving_over_mtls(suite: RunnerSuite) -> None:
    for service in SERVICES:
        async with suite.channel(service) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, service


async def test_the_output_names_every_address_and_certificate(suite: RunnerSuite) -> None:
    for service in SERVICES:
        assert suite.address(service) in suite.output
    assert f"http://127.0.0.1:{suite.ports['ui']}" in suite.output
    assert str(suite.var_dir / "pki" / "ca.pem") in suite.output
    assert str(suite.var_dir / "pki" / "clients" / "operator.pem") in suite.output


async def test_a_directory_is_read_through_each_service(suite: RunnerSuite) -> None:
    async with suite.channel("intake") as channel:
        items = await intake_pb2_grpc.IntakeServiceStub(channel).ListApprovalItems(
            intake_pb2.ListApprovalItemsRequest(page_size=500))
    async with suite.channel("review") as channel:
        officials = await review_pb2_grpc.ReviewServiceStub(channel).ListOfficials(
            review_pb2.ListOfficialsRequest(page_size=500))
    async with suite.channel("trading") as channel:
        experts = await trading_pb2_grpc.TradingServiceStub(channel).ListExperts(
            trading_pb2.ListExpertsRequest(page_size=500), metadata=as_official("ZWFWZX-007"))
    async with suite.channel("complaints") as channel:
        departments = await complaints_pb2_grpc.ComplaintsServiceStub(channel).ListDepartments(
            complaints_pb2.ListDepartmentsRequest(page_size=500))
    assert len(items.items) >= 110
    assert len({i.department_code for i in items.items}) >= 30
    assert len(officials.officials) >= 100
    assert len(experts.experts) >= 60
    assert len(departments.departments) >= 100


def test_the_temporal_ui_answers(suite: RunnerSuite) -> None:
    url = f"http://127.0.0.1:{suite.ports['ui']}/"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200


def test_the_custom_search_attributes_are_registered(suite: RunnerSuite) -> None:
    listing = subprocess.run(
        [str(Path(sys.executable).parent / "temporal"), "operator", "search-attribute", "list",
         "--address", f"127.0.0.1:{suite.ports['temporal']}"],
        capture_output=True, text=True, check=True, timeout=30).stdout
    for key in SEARCH_ATTRIBUTES:
        assert key.name in listing


async def test_an_application_goes_through_the_whole_chain(suite: RunnerSuite) -> None:
    driver = ChainDriver.connect(intake_address=suite.address("intake"),
                                 review_address=suite.address("review"),
                                 pki_dir=suite.var_dir / "pki")
    try:
        case_number, certificate = await driver.run_case()
        case = await driver.intake.GetCase(
            intake_pb2.GetCaseRequest(case_number=case_number), metadata=acting(CLERK))
        sealed = (await driver.intake.GetDecision(
            intake_pb2.GetDecisionRequest(certificate_number=certificate),
            metadata=acting(CLERK))).decision
        verdict = await driver.intake.VerifyDecision(intake_pb2.VerifyDecisionRequest(
            document=sealed.document, signature=sealed.signature))
    finally:
        await driver.close()
    assert certificate.startswith("SY-")
    assert case.case.status == intake_pb2.CASE_STATUS_APPROVED
    assert case.case.certificate_number == certificate
    kinds = [event.kind for event in case.timeline]
    assert kinds.index("review.decided") < kinds.index("sign.decided") < kinds.index(
        "seal.decided")
    assert verdict.result == intake_pb2.VERIFICATION_RESULT_VALID


def test_the_temporal_ui_names_the_codec_server(suite: RunnerSuite) -> None:
    endpoint = f"https://127.0.0.1:{suite.ports['codec']}"
    url = f"http://127.0.0.1:{suite.ports['ui']}/api/v1/settings"
    with urllib.request.urlopen(url, timeout=10) as response:
        settings = json.load(response)
    assert settings["Codec"]["Endpoint"] == endpoint
    assert endpoint in suite.output
    assert str(suite.var_dir / "pki" / "clients" / "operator.p12") in suite.output


async def test_a_case_leaves_only_ciphertext_in_temporal_which_operators_can_decode(
        suite: RunnerSuite) -> None:
    pki_dir = suite.var_dir / "pki"
    driver = ChainDriver.connect(intake_address=suite.address("intake"),
                                 review_address=suite.address("review"), pki_dir=pki_dir)
    try:
        case_number, _ = await driver.run_case()
    finally:
        await driver.close()
    client = await connect(f"127.0.0.1:{suite.ports['temporal']}",
                           security=TemporalSecurity.embedded(pki_dir))
    fetched = await client.get_workflow_handle(workflow_id(case_number)).fetch_history()
    history = History(events=fetched.events)
    found = list(stored_payloads(history))
    assert len(found) > 10
    assert [(where, p.metadata["encoding"]) for where, p in found
            if p.metadata["encoding"] != ENCODING] == []
    stored = Payloads(payloads=[payload for _, payload in found])
    assert OPINION.encode() not in history.SerializeToString()

    async def decode(system: str | None) -> tuple[int, str]:
        context = ssl.create_default_context(cafile=str(pki_dir / "ca.pem"))
        if system is not None:
            context.load_cert_chain(pki_dir / "clients" / f"{system}.pem",
                                    pki_dir / "clients" / f"{system}.key")
        async with aiohttp.ClientSession() as session, session.post(
                f"https://127.0.0.1:{suite.ports['codec']}/decode", ssl=context,
                data=json_format.MessageToJson(stored),
                headers={"Content-Type": "application/json", "X-Namespace": "default"}) as reply:
            return reply.status, await reply.text()

    status, text = await decode("operator")
    assert status == 200
    decoded = json_format.Parse(text, Payloads())
    assert any(OPINION in p.data.decode() for p in decoded.payloads)
    for refused in (None, "hall-window-system"):
        status, text = await decode(refused)
        assert status in (401, 403)
        assert OPINION not in text


async def test_the_open311_facade_answers_where_the_output_says(suite: RunnerSuite) -> None:
    url = f"https://127.0.0.1:{suite.ports['open311']}/open311/v2"
    assert url in suite.output
    keys = suite.var_dir / "open311" / "api-keys.json"
    assert str(keys) in suite.output
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    context = ssl.create_default_context(cafile=str(suite.var_dir / "pki" / "ca.pem"))
    async with httpx.AsyncClient(verify=context, timeout=30) as client:
        services = (await client.get(f"{url}/services.json")).json()
        wrong = await client.get(f"{url}/requests.json", params={"api_key": "o311_wrong"})
    assert "SC-01" in {s["service_code"] for s in services}
    assert wrong.status_code == 403


def test_everything_under_var_is_private(suite: RunnerSuite) -> None:
    paths = [suite.var_dir, *suite.var_dir.rglob("*")]
    open_to_others = [(str(p), oct(p.lstat().st_mode & 0o777)) for p in paths
                      if not p.is_symlink() and p.lstat().st_mode & 0o077]
    assert open_to_others == []
    assert (suite.var_dir / "db" / "intake.sqlite3").exists()
    assert (suite.var_dir / "temporal" / "temporal.db").exists()
    assert (suite.var_dir / "pki" / "temporal-codec" / "0001.key").exists()
    assert stat.S_IMODE((suite.var_dir / "log" / "older.log").stat().st_mode) == 0o600


async def test_stopping_is_clean_and_restarting_keeps_the_data(suite: RunnerSuite) -> None:
    async with suite.channel("intake") as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        item = (await stub.GetApprovalItem(
            intake_pb2.GetApprovalItemRequest(code="012101000001000"))).item
        item.promised_limit_days = 1
        await stub.PublishApprovalItemVersion(
            intake_pb2.PublishApprovalItemVersionRequest(item=item),
            metadata=as_official("ZWFWZX-004"))
        audit_before = (await stub.VerifyAuditLog(
            intake_pb2.VerifyAuditLogRequest())).verification
    api_keys = (suite.var_dir / "open311" / "api-keys.json").read_text()
    assert suite.stop() == 0
    assert "stopped" in suite.output
    # Every port, the Open311 façade's too, is closed.
    for port in suite.ports.values():
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"

    suite.start()
    async with suite.channel("intake") as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        kept = (await stub.GetApprovalItem(
            intake_pb2.GetApprovalItemRequest(code="012101000001000"))).item
        audit_after = (await stub.VerifyAuditLog(
            intake_pb2.VerifyAuditLogRequest())).verification
    assert kept.version == 2 and kept.promised_limit_days == 1
    # The platforms keep the Open311 keys they were given.
    assert (suite.var_dir / "open311" / "api-keys.json").read_text() == api_keys
    # The sample data is not loaded a second time.
    assert audit_after.entries == audit_before.entries
    assert audit_after.head_hash == audit_before.head_hash
