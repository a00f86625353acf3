"""Record a history of TenderWorkflow as it is now, for the replay test.

Run before a change to the workflow's shape, and commit the files:
``python -m tests.replay.record_tender_history [recording]`` (starts its own
time-skipping server and a trading service on a fresh SQLite file). The
activities are trading's real ones; a history records their results, so a
replay needs no service. The payloads are stored decoded (the payload key
stays in the temporary folder), and the public key that signed the
statements is kept beside the history (``tender-keys/``): the workflow
verifies every statement on replay too.

The case: four bids; an amendment; an objection to the documents, answered;
the deadline; three keys revealed and one not; the committee drawn and
seated; every sheet; the candidates; the award; the contract.

``python -m tests.replay.record_tender_history r1-repeated`` records it with a second
amendment under the first one's request id, with another content, sent to the workflow
as its own update (the shape of attack s17 LOW 5, before ``tender-one-act-per-request``).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import uuid
from datetime import UTC, timedelta
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.history.v1 import History
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from govhall.trading.v1 import trading_pb2 as pb
from kernel.pki import SAMPLE_SYSTEMS, ensure_pki
from kernel.signing import TrustedKeys, public_keys_dir, service_signer, trust_in_workflows
from kernel.temporal import SEARCH_ATTRIBUTES, TemporalSecurity, data_converter
from services.trading.main import DEFINITION
from tests.history_text import _payloads
from tests.integration.trading.test_tender_chain import OFFICER, Venue
from tests.support import SAMPLE_DIR, service_under_test
from workflows import tender_contract as t
from workflows.approval_contract import as_statement, content_digest
from workflows.tender import TenderWorkflow

HISTORIES = Path(__file__).parent / "histories"
KEYS = HISTORIES / "tender-keys"
BIN = Path(sys.executable).parent


async def decoded(history: WorkflowHistory, env: WorkflowEnvironment) -> WorkflowHistory:
    """``history`` with every payload decoded by the codec that encrypted it."""
    events = History(events=list(history.events))
    codec = env.client.data_converter.payload_codec
    assert codec is not None
    found = list(_payloads(events))
    for payload, plain in zip(found, await codec.decode(found), strict=True):
        payload.CopyFrom(plain)
    return WorkflowHistory(history.workflow_id, list(events.events))


async def repeated_amendment(env: WorkflowEnvironment, pki: Path, number: str,
                             request_id: str) -> None:
    """Another amendment under ``request_id``, signed by trading, sent straight to the
    workflow as its own update (as a second content racing the first was)."""
    at = await env.get_current_time()
    text = "另一个更正"
    body = t.tender_statement_body(
        kind=t.StatementKind.AMENDMENT, tender_no=number, official_id="ZWFWZX-007",
        department_code="ZWFWZX", roles=["trading_officer"], system="trading-platform",
        issued_at=at, request_id=request_id, content_sha256=content_digest(text=text))
    await env.client.get_workflow_handle(t.workflow_id(number)).execute_update(
        t.AMEND, t.OfficialAct(as_statement(service_signer(pki, "trading").sign(body)), text),
        result_type=t.ActReceipt)


async def record(recording: str) -> Path:
    scratch = Path(tempfile.mkdtemp())
    pki = scratch / "pki"
    ensure_pki(pki, SAMPLE_SYSTEMS)
    security = TemporalSecurity.embedded(pki)
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=data_converter(security.codec))
    await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=env.client.namespace, search_attributes={
            key.name: IndexedValueType.ValueType(key.indexed_value_type)
            for key in SEARCH_ATTRIBUTES}))
    prefix = f"record{uuid.uuid4().hex[:8]}-"
    target = str(env.client.service_client.config.target_host)
    try:
        async with service_under_test(
                DEFINITION, database_url=f"sqlite:///{scratch / 'trading.sqlite3'}",
                pki_dir=pki, temporal_address=target, task_queue_prefix=prefix,
                run_activity_worker=True) as trading:
            trust_in_workflows(TrustedKeys.load(public_keys_dir(pki)))
            venue = Venue(env, trading, {})
            async with Worker(env.client, task_queue=f"{prefix}workflows",
                              workflows=[TenderWorkflow]):
                number = (await venue.announce()).tender_no
                prices = {"0001": 490_000_000, "0002": 480_000_000, "0003": 470_000_000,
                          "0004": 460_000_000}
                sealed = {n: await venue.bid(number, n, price) for n, price in prices.items()}
                amendment = str(uuid.uuid4())
                await venue.via().AmendTender(pb.AmendTenderRequest(
                    request_id=amendment, tender_no=number, content="更正"),
                    metadata=OFFICER)
                if recording.endswith("-repeated"):
                    await repeated_amendment(env, pki, number, amendment)
                await venue.via().ObjectToTender(pb.ObjectToTenderRequest(
                    request_id=str(uuid.uuid4()), tender_no=number,
                    target=pb.OBJECTION_TARGET_DOCUMENTS, grounds="异议"), metadata=OFFICER)
                await venue.skip(timedelta(hours=5))
                answered = (await venue.via().AnswerObjection(pb.AnswerObjectionRequest(
                    request_id=str(uuid.uuid4()), tender_no=number, objection_id="OB-1",
                    answer="答复"), metadata=OFFICER)).result
                deadline = answered.tender.bid_deadline.ToDatetime(tzinfo=UTC)
                await venue.skip(deadline - await env.get_current_time()
                                 + timedelta(minutes=1))
                await venue.until_stage(number, pb.TENDER_STAGE_DECRYPTION)
                for n in ("0001", "0002", "0003"):
                    await venue.reveal(number, n, sealed[n][1])
                await venue.skip(timedelta(hours=2, minutes=1))
                await venue.until_stage(number, pb.TENDER_STAGE_EVALUATION)
                await venue.draw_committee(number)
                members = await venue.seat(number)
                systems = {r["expert_id"]: r["system"] for r in json.loads(
                    (SAMPLE_DIR / "trading.json").read_text("utf-8"))["expert_systems"]}
                for bidder in ("BD-0001", "BD-0002", "BD-0003"):
                    for member in members:
                        await venue.via(systems[member]).SubmitScoreSheet(
                            pb.SubmitScoreSheetRequest(
                                request_id=str(uuid.uuid4()), tender_no=number,
                                member_id=member, bidder_id=bidder, compliant=True))
                await venue.until_stage(number, pb.TENDER_STAGE_CANDIDATES)
                await venue.skip(timedelta(days=3, minutes=1))
                winner = "BD-0003"
                await venue.via().AwardTender(pb.AwardTenderRequest(
                    request_id=str(uuid.uuid4()), tender_no=number,
                    winner_bidder_id=winner, amount_fen=500_000_000), metadata=OFFICER)
                await venue.via().RecordContract(pb.RecordContractRequest(
                    request_id=str(uuid.uuid4()), tender_no=number,
                    contract_no="HT-2026-001", amount_fen=500_000_000), metadata=OFFICER)
                handle = env.client.get_workflow_handle(t.workflow_id(number),
                                                        result_type=t.TenderResult)
                assert (await handle.result()).outcome == "contracted"
                history = await decoded(await handle.fetch_history(), env)
                for channel in venue.channels.values():
                    await channel.close(None)
    finally:
        await env.shutdown()
    path = HISTORIES / f"tender-{recording}-contracted.json"
    path.write_text(history.to_json(), encoding="utf-8")
    # The public key only (beside those of the histories recorded before): the private one
    # stays in the temporary folder.
    (KEYS / "trading").mkdir(parents=True, exist_ok=True)
    for public in (public_keys_dir(pki) / "trading").glob("*.pub"):
        shutil.copy(public, KEYS / "trading" / public.name)
    shutil.rmtree(scratch, ignore_errors=True)
    return path


if __name__ == "__main__":
    print(asyncio.run(record(sys.argv[1] if len(sys.argv) > 1 else "r1")))
