"""What Temporal stores is ciphertext; the codec server gives operators, and only them, the text.

A real workflow runs on the shared dev server with a marker in every kind
of payload (input, activity input/result/failure, update, signal, result);
the history read back raw from the server must not hold the marker
anywhere, and every payload in it must be encrypted. The codec server then
decodes those very payloads for the operator's certificate and refuses
everyone else.
"""

from __future__ import annotations

import json
import ssl
import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.api.history.v1 import History
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from kernel.codec import ENCODING, KEY_ID
from kernel.codec_server import CodecServerSettings, start, token_path
from kernel.pki import ca_cert_path, client_pair
from kernel.temporal import TemporalSecurity, connect
from tests.security.marker_workflow import NOTE, REMARK, Carried, MarkerWorkflow, echo, refuse
from tests.security.payloads import stored_payloads

MARKER = "MARKER-7f3a9c-440106199001011234"
UI_ORIGIN = "http://127.0.0.1:8233"


@pytest.fixture(scope="module")
async def history(temporal_dev_server: WorkflowEnvironment,
                  temporal_security: TemporalSecurity) -> History:
    """The raw history of one finished MarkerWorkflow run.

    Its client, worker and starter included, is the one govhall's own processes make
    (``kernel.temporal.connect``), not the test server's: what is checked is what the
    services and the worker send.
    """
    server = temporal_dev_server.client
    client = await connect(str(server.service_client.config.target_host), server.namespace,
                           security=temporal_security)
    task_queue = f"marker-{uuid.uuid4()}"
    async with Worker(client, task_queue=task_queue, workflows=[MarkerWorkflow],
                      activities=[echo, refuse]):
        handle = await client.start_workflow(
            MarkerWorkflow.run, Carried(f"start {MARKER}"), id=f"marker/{uuid.uuid4()}",
            task_queue=task_queue)
        noted = await handle.execute_update(NOTE, Carried(f"update {MARKER}"),
                                            result_type=Carried)
        assert noted == Carried(f"noted update {MARKER}")
        await handle.signal(REMARK, Carried(f"signal {MARKER}"))
        result = await handle.result()
    assert result == Carried(f"start {MARKER} echoed update {MARKER} signal {MARKER}")
    fetched = await handle.fetch_history()
    return History(events=fetched.events)


def test_the_history_holds_no_plaintext(history: History) -> None:
    raw = history.SerializeToString()
    assert MARKER.encode() not in raw
    assert b"refused" not in raw  # the activity's failure message is encrypted too
    assert b"json/plain" not in raw


def test_every_stored_payload_is_encrypted(history: History) -> None:
    found = list(stored_payloads(history))
    kinds = {where.split(".")[1] for where, _ in found}
    # Start input, activity input and result, update argument and result, signal,
    # the activity's failure and the workflow's result are all there to check.
    assert {"workflow_execution_started_event_attributes",
            "activity_task_scheduled_event_attributes",
            "activity_task_completed_event_attributes",
            "activity_task_failed_event_attributes",
            "workflow_execution_update_accepted_event_attributes",
            "workflow_execution_update_completed_event_attributes",
            "workflow_execution_signaled_event_attributes",
            "workflow_execution_completed_event_attributes"} <= kinds
    for where, payload in found:
        assert payload.metadata["encoding"] == ENCODING, where
        assert payload.metadata[KEY_ID] == b"0001", where


def _stored(history: History) -> Payloads:
    return Payloads(payloads=[p for _, p in stored_payloads(history)])


def _tls(pki_dir: Path, system: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_cert_path(pki_dir)))
    if system is not None:
        pair = client_pair(pki_dir, system)
        context.load_cert_chain(pair.cert, pair.key)
    return context


@pytest.fixture
async def codec_server(pki_dir: Path) -> AsyncIterator[str]:
    """The codec server on a free port, serving the payload keys the dev server's client uses."""
    runner, port = await start(CodecServerSettings(port=0, pki_dir=pki_dir,
                                                   ui_origins=[UI_ORIGIN]))
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _post(endpoint: str, path: str, body: str, *, pki_dir: Path,
                system: str | None, **headers: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(
            f"{endpoint}{path}", data=body, ssl=_tls(pki_dir, system),
            headers={"Content-Type": "application/json", "X-Namespace": "default",
                     "Origin": UI_ORIGIN, **headers}) as reply:
        return reply.status, await reply.text()


async def test_the_codec_server_decodes_the_history_for_an_operator(
        history: History, codec_server: str, pki_dir: Path) -> None:
    body = json_format.MessageToJson(_stored(history))
    status, text = await _post(codec_server, "/decode", body, pki_dir=pki_dir,
                               system="operator")
    assert status == 200, text
    decoded = json_format.Parse(text, Payloads())
    plaintexts = [p.data.decode() for p in decoded.payloads]
    assert all(p.metadata["encoding"] == b"json/plain" for p in decoded.payloads)
    assert any(f"update {MARKER}" in p for p in plaintexts)
    assert any(f"signal {MARKER}" in p for p in plaintexts)
    assert any(f"start {MARKER} echoed" in p for p in plaintexts)


async def test_the_codec_server_serves_under_any_prefix_and_encodes_for_operators(
        codec_server: str, pki_dir: Path) -> None:
    original = Payloads(payloads=[json_format.ParseDict(
        {"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "IkhJIg=="},
        Payloads().payloads.add())])
    status, text = await _post(codec_server, "/govhall/default/encode",
                               json_format.MessageToJson(original), pki_dir=pki_dir,
                               system="operator")
    assert status == 200, text
    encoded = json_format.Parse(text, Payloads())
    assert encoded.payloads[0].metadata["encoding"] == ENCODING
    status, text = await _post(codec_server, "/govhall/default/decode", text,
                               pki_dir=pki_dir, system="operator")
    assert status == 200, text
    assert json_format.Parse(text, Payloads()) == original


@pytest.mark.parametrize(("system", "status"), [(None, 401), ("hotline-12345", 403),
                                                ("supervision-system", 403)])
async def test_without_an_operators_certificate_nothing_is_decoded(
        history: History, codec_server: str, pki_dir: Path, system: str | None,
        status: int) -> None:
    body = json_format.MessageToJson(_stored(history))
    for path in ("/decode", "/encode"):
        answered, text = await _post(codec_server, path, body, pki_dir=pki_dir, system=system)
        assert answered == status, text
        assert MARKER not in text
        assert list(json.loads(text)) == ["error"]


async def test_a_certificate_from_another_ca_cannot_even_connect(
        codec_server: str, pki_dir: Path, foreign_pki_dir: Path) -> None:
    context = _tls(pki_dir, None)
    pair = client_pair(foreign_pki_dir, "operator")
    context.load_cert_chain(pair.cert, pair.key)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.post(f"{codec_server}/decode", data="{}", ssl=context):
                pass


async def test_a_bad_body_or_an_unknown_key_is_a_clear_client_error(
        history: History, codec_server: str, pki_dir: Path) -> None:
    status, text = await _post(codec_server, "/decode", "not json", pki_dir=pki_dir,
                               system="operator")
    assert (status, "not a JSON Payloads message" in text) == (400, True)
    stored = _stored(history)
    stored.payloads[0].metadata[KEY_ID] = b"0099"
    status, text = await _post(codec_server, "/decode", json_format.MessageToJson(stored),
                               pki_dir=pki_dir, system="operator")
    assert status == 422
    assert "key '0099'" in text


async def test_cors_lets_the_ui_origin_send_credentials_and_no_other(
        codec_server: str, pki_dir: Path) -> None:
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,x-namespace"}
    async with aiohttp.ClientSession() as session:
        # Browsers send the preflight without credentials, so none is offered here.
        async with session.options(f"{codec_server}/decode", ssl=_tls(pki_dir, None),
                                   headers={"Origin": UI_ORIGIN, **preflight}) as reply:
            assert reply.status == 204
            assert reply.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
            assert reply.headers["Access-Control-Allow-Credentials"] == "true"
            assert "X-Namespace" in reply.headers["Access-Control-Allow-Headers"]
        async with session.options(f"{codec_server}/decode", ssl=_tls(pki_dir, None),
                                   headers={"Origin": "http://evil.example",
                                            **preflight}) as reply:
            assert reply.status == 403
            assert "Access-Control-Allow-Origin" not in reply.headers


async def test_the_operators_bearer_token_decodes_for_the_cli_and_a_wrong_one_does_not(
        history: History, codec_server: str, pki_dir: Path) -> None:
    token_file = token_path(pki_dir)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    body = json_format.MessageToJson(_stored(history))
    status, text = await _post(codec_server, "/decode", body, pki_dir=pki_dir, system=None,
                               Authorization=f"Bearer {token}")
    assert status == 200, text
    assert MARKER in "".join(p.data.decode()
                             for p in json_format.Parse(text, Payloads()).payloads)
    for wrong in (f"Bearer {token}x", f"Basic {token}", "Bearer "):
        # A wrong token is refused even alongside an operator's certificate.
        status, text = await _post(codec_server, "/decode", body, pki_dir=pki_dir,
                                   system="operator", Authorization=wrong)
        assert status == 401, wrong
        assert MARKER not in text


async def test_a_page_from_another_origin_cannot_use_the_operators_certificate(
        history: History, codec_server: str, pki_dir: Path) -> None:
    body = json_format.MessageToJson(_stored(history))
    status, text = await _post(codec_server, "/decode", body, pki_dir=pki_dir,
                               system="operator", Origin="http://evil.example")
    assert status == 403
    assert MARKER not in text
