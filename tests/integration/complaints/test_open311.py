"""The Open311 GeoReport v2 façade, over real HTTPS inside a running complaints service.

The ``georeport`` client from PyPI reads it as it reads a city's endpoint
(REQUESTS_CA_BUNDLE at the center's CA); posts are form-encoded as the spec
sends them; raw httpx requests check the views, the keys and every bad input.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
import sqlalchemy as sa
from georeport import GeoReport

from deploy.local.processes import free_ports
from govhall.complaints.v1 import complaints_pb2 as pb
from govhall.complaints.v1 import complaints_pb2_grpc
from kernel.fieldcipher import field_cipher
from kernel.pki import ca_cert_path
from kernel.service import prepare
from services.complaints.db import tables
from services.complaints.main import DEFINITION, complainant_key_path, open311_server
from services.complaints.open311.keys import key_hash
from tests.support import ServiceUnderTest, fresh_database_url, service_under_test

HOTLINE, PORTAL = "12345", "LNZWFW"
#: A phone number, a name and a description no sample file, fixture or code holds.
PHONE = "139-2468-1357"
FIRST, LAST = "晓筠", "欧阳"
DESCRIPTION = "小区门口的早餐店使用过期食材，多次反映无果。"
ADDRESS = "沈阳市和平区南京北街1号"


@dataclass
class Facade:
    service: ServiceUnderTest
    base: str
    keys: dict[str, str]
    key_file: Path
    ssl: ssl.SSLContext

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, verify=self.ssl, timeout=30)

    async def post(self, fields: dict[str, str], *, fmt: str = "json",
                   platform: str | None = HOTLINE) -> httpx.Response:
        data = dict(fields)
        if platform is not None:
            data = {"api_key": self.keys[platform]} | data
        async with self.client() as client:
            return await client.post(f"/requests.{fmt}", data=data)

    async def get(self, path: str, **params: str) -> httpx.Response:
        async with self.client() as client:
            return await client.get(path, params=params or None)

    def rows(self) -> dict[str, list[tuple[Any, ...]]]:
        engine = sa.create_engine(self.service.settings.resolved_database_url())
        metadata = sa.MetaData()
        metadata.reflect(engine)
        try:
            with engine.connect() as connection:
                return {t.name: sorted(tuple(r) for r in connection.execute(sa.select(t)))
                        for t in metadata.sorted_tables}
        finally:
            engine.dispose()


@pytest.fixture
async def facade(backend: str, tmp_path: Path, pki_dir: Path) -> AsyncIterator[Facade]:
    """The complaints service with its Open311 façade on a free port, fresh database."""
    url = fresh_database_url(backend, "complaints", tmp_path)
    port = free_ports(1)[0]
    key_file = tmp_path / "open311" / "api-keys.json"
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  open311_port=port, open311_api_keys_file=key_file,
                                  # No checkpoint may land between two snapshots of the rows.
                                  audit_checkpoint_every_entries=0,
                                  audit_checkpoint_interval_seconds=0) as service:
        context = ssl.create_default_context(cafile=str(ca_cert_path(pki_dir)))
        keys = json.loads(key_file.read_text())
        yield Facade(service, f"https://127.0.0.1:{port}/open311/v2", keys, key_file, context)


def _case(**changes: str) -> dict[str, str]:
    return {"service_code": "SC-01", "lat": "41.8057", "long": "123.4315",
            "address_string": ADDRESS, "first_name": FIRST, "last_name": LAST,
            "phone": PHONE, "description": DESCRIPTION,
            "attribute[kind]": "complaint"} | changes


async def _posted(facade: Facade, **changes: str) -> str:
    response = await facade.post(_case(**changes))
    assert response.status_code == 200, response.text
    [created] = response.json()
    return str(created["service_request_id"])


def _xml(body: bytes) -> ElementTree.Element:
    """The façade's own answer (not untrusted input), parsed."""
    return ElementTree.fromstring(body)  # noqa: S314


def _xml_requests(body: bytes) -> list[dict[str, str | None]]:
    root = _xml(body)
    assert root.tag == "service_requests"
    return [{child.tag: child.text for child in request} for request in root]


@pytest.fixture
def ca_bundle(monkeypatch: pytest.MonkeyPatch, pki_dir: Path) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_cert_path(pki_dir)))


# ---- the georeport client ----------------------------------------------------------------


def _read_with_georeport(base: str, fmt: str, number: str) -> dict[str, Any]:
    client = GeoReport(base, output_format=fmt)
    return {"services": client.get_service_list(),
            "definition": client.get_service_definition("SC-01"),
            "requests": client.get_service_requests(),
            "filtered": client.get_service_requests(service_code="SC-01", status="open"),
            "request": client.get_service_request(number)}


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_the_georeport_client_reads_services_requests_and_a_request(
        facade: Facade, ca_bundle: None, fmt: str) -> None:
    number = await _posted(facade)
    other = await _posted(facade, service_code="JT-02", description="地铁站扶梯停运三天。",
                          **{"attribute[kind]": "report"})
    # The client is synchronous (requests); the façade runs on this test's event loop.
    read = await asyncio.to_thread(_read_with_georeport, facade.base, fmt, number)

    services = {s["service_code"]: s for s in read["services"]}
    assert services["SC-01"]["service_name"] == "食品安全"
    assert services["SC-01"]["type"] == "realtime"
    assert str(services["SC-01"]["metadata"]).lower() == "true"
    assert "市场监督管理局" in services["SC-01"]["group"]
    definition = read["definition"]
    assert definition["service_code"] == "SC-01"
    attributes = definition["attributes"]
    attribute_list = attributes if fmt == "json" else attributes["attribute"]
    kind = next(a for a in attribute_list if a["code"] == "kind")
    values = kind["values"] if fmt == "json" else kind["values"]["value"]
    assert {v["key"] for v in values} == {
        "consultation", "help_request", "suggestion", "complaint", "report"}
    assert str(kind["required"]).lower() == "true"

    listed = {r["service_request_id"]: r for r in read["requests"]}
    assert {number, other} <= set(listed)
    filtered = read["filtered"]
    filtered = [filtered] if isinstance(filtered, dict) else filtered
    assert [r["service_request_id"] for r in filtered] == [number]
    request = read["request"]
    assert request["service_request_id"] == number
    assert request["status"] == "open"
    assert request["service_code"] == "SC-01"
    assert request["agency_responsible"] == services["SC-01"]["group"]
    requested = datetime.fromisoformat(request["requested_datetime"])
    assert abs(requested - datetime.now(UTC)) < timedelta(minutes=5)
    assert "description" not in request and "address" not in request


async def test_discovery_names_the_endpoint_and_its_formats(facade: Facade) -> None:
    as_json = (await facade.get("/discovery.json")).json()
    [endpoint] = as_json["endpoints"]
    assert endpoint["url"] == facade.base
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["formats"] == ["text/xml", "application/json"]
    as_xml = _xml((await facade.get("/discovery.xml")).content)
    assert as_xml.tag == "discovery"
    formats = as_xml.findall("./endpoints/endpoint/formats/format")
    assert [f.text for f in formats] == ["text/xml", "application/json"]


async def test_answers_are_utf8_xml_and_json_as_the_spec_lays_them_out(facade: Facade) -> None:
    number = await _posted(facade)
    as_xml = await facade.get(f"/requests/{number}.xml", api_key=facade.keys[HOTLINE])
    assert as_xml.headers["content-type"] == "text/xml; charset=utf-8"
    assert as_xml.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    [request] = _xml_requests(as_xml.content)
    assert list(request)[:5] == ["service_request_id", "status", "status_notes",
                                 "service_name", "service_code"]
    assert request["description"] == DESCRIPTION
    as_json = await facade.get(f"/requests/{number}.json", api_key=facade.keys[HOTLINE])
    assert as_json.headers["content-type"] == "application/json; charset=utf-8"
    [same] = as_json.json()
    assert same["status_notes"] is None
    assert same["lat"] == pytest.approx(41.8057) and same["long"] == pytest.approx(123.4315)
    services = _xml((await facade.get("/services.xml")).content)
    assert services.tag == "services"
    assert {s.tag for s in services} == {"service"}


# ---- posting is the gRPC intake ----------------------------------------------------------


async def test_a_post_is_taken_in_as_grpc_takes_a_push(facade: Facade) -> None:
    response = await facade.post(_case(), fmt="xml")
    assert response.status_code == 200
    root = _xml(response.content)
    assert root.tag == "service_requests"
    number = root.findtext("./request/service_request_id") or ""
    assert "市场监督管理局" in (root.findtext("./request/service_notice") or "")
    async with facade.service.channel("hotline-12345") as channel:
        case = (await complaints_pb2_grpc.ComplaintsServiceStub(channel).GetComplaint(
            pb.GetComplaintRequest(case_number=number))).complaint
    assert case.platform_id == HOTLINE
    assert case.content == DESCRIPTION
    assert case.complainant_name == f"{FIRST} {LAST}"
    assert case.complainant_phone == PHONE
    assert case.location.address == ADDRESS
    assert case.location.latitude == pytest.approx(41.8057)
    assert case.kind == pb.COMPLAINT_KIND_COMPLAINT
    assert case.department_code == "SCJGJ"
    # Sealed like a gRPC push: the phone is nowhere in the database in clear.
    assert PHONE not in json.dumps(facade.rows(), default=str, ensure_ascii=False)


async def test_posting_again_returns_the_same_case_and_changes_nothing(facade: Facade) -> None:
    first = await _posted(facade)
    with_id = await _posted(facade, **{"attribute[external_id]": "HL-2026-7"})
    before = facade.rows()
    assert await _posted(facade) == first
    assert await _posted(facade, **{"attribute[external_id]": "HL-2026-7"}) == with_id
    other = await facade.post(_case(description="另一件事。",
                                    **{"attribute[external_id]": "HL-2026-7"}))
    assert other.status_code == 400
    [error] = other.json()
    assert error["code"] == 400 and "HL-2026-7" in error["description"]
    assert facade.rows() == before


async def test_a_platform_reads_its_own_cases_in_full_and_no_other_platforms(
        facade: Facade) -> None:
    mine = await _posted(facade)
    theirs_response = await facade.post(
        _case(description="路灯不亮已经一周。", address_string="沈阳市沈河区青年大街2号",
              phone="138-0000-1111"), platform=PORTAL)
    theirs = theirs_response.json()[0]["service_request_id"]
    hotline = facade.keys[HOTLINE]

    own = (await facade.get(f"/requests/{mine}.json", api_key=hotline)).json()[0]
    assert own["description"] == DESCRIPTION and own["address"] == ADDRESS
    for path in (f"/requests/{theirs}.json", "/requests.json", "/requests.xml",
                 f"/requests/{theirs}.xml"):
        body = (await facade.get(path, api_key=hotline)).text
        assert theirs in body
        assert "路灯" not in body and "青年大街" not in body and "138-0000-1111" not in body
    # ... and the portal's key does not open the hotline's case either.
    body = (await facade.get(f"/requests/{mine}.json", api_key=facade.keys[PORTAL])).text
    assert DESCRIPTION not in body and ADDRESS not in body


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_the_keyless_view_carries_no_description_or_personal_data(
        facade: Facade, fmt: str) -> None:
    number = await _posted(facade)
    for path in (f"/requests.{fmt}", f"/requests/{number}.{fmt}"):
        response = await facade.get(path)
        assert response.status_code == 200
        body = response.text
        assert number in body
        for private in (PHONE, FIRST, LAST, DESCRIPTION, ADDRESS, "41.8057", "123.4315"):
            assert private not in body, (path, private)
        assert "SC-01" in body and "市场监督管理局" in body


async def test_requests_are_filtered_as_the_spec_says(facade: Facade) -> None:
    food = await _posted(facade)
    metro = await _posted(facade, service_code="JT-02", description="地铁站扶梯停运三天。")

    async def numbers(**params: str) -> list[str]:
        response = await facade.get("/requests.json", **params)
        assert response.status_code == 200, response.text
        return [r["service_request_id"] for r in response.json()]

    assert set(await numbers()) == {food, metro}
    assert await numbers(service_code="JT-02") == [metro]
    assert set(await numbers(service_code="SC-01,JT-02")) == {food, metro}
    assert set(await numbers(status="open")) == {food, metro}
    assert await numbers(status="closed") == []
    assert await numbers(service_request_id=f"{metro},CP-20200101-000001") == [metro]
    # service_request_id overrides every other argument.
    assert await numbers(service_request_id=food, status="closed") == [food]
    long_ago = (datetime.now(UTC) - timedelta(days=200)).isoformat()
    assert await numbers(start_date=long_ago) == []
    assert await numbers(end_date=long_ago) == []
    now = datetime.now(UTC)
    assert set(await numbers(start_date=(now - timedelta(hours=1)).isoformat(),
                             end_date=(now + timedelta(hours=1)).isoformat())) == {food, metro}


async def test_a_token_names_the_case_the_platform_pushed_under_it(facade: Facade) -> None:
    number = await _posted(facade, **{"attribute[external_id]": "HL-2026-42"})
    for fmt in ("json", "xml"):
        response = await facade.get(f"/tokens/HL-2026-42.{fmt}", api_key=facade.keys[HOTLINE])
        assert response.status_code == 200
        if fmt == "json":
            assert response.json() == [{"service_request_id": number, "token": "HL-2026-42"}]
        else:
            assert _xml_requests(response.content) == [
                {"service_request_id": number, "token": "HL-2026-42"}]
    assert (await facade.get("/tokens/HL-2026-42.json")).json()[0][
        "service_request_id"] == number
    elsewhere = await facade.get("/tokens/HL-2026-42.json", api_key=facade.keys[PORTAL])
    assert elsewhere.status_code == 404


# ---- published replies and case handling's columns ---------------------------------------


async def test_status_notes_are_the_published_reply_never_the_reply_as_written(
        facade: Facade, pki_dir: Path) -> None:
    """A replied case: its reply as written (with the complainant's name) and as published."""
    number = await _posted(facade)
    due = datetime(2026, 12, 18, 9, 30, tzinfo=UTC)
    engine = sa.create_engine(facade.service.settings.resolved_database_url())
    try:
        with engine.begin() as connection:
            connection.execute(tables.complaint_cases.update()
                               .where(tables.complaint_cases.c.case_number == number)
                               .values(status="closed", reply_due=due))
            connection.execute(tables.complaint_replies.insert().values(
                case_number=number, sequence=1, department_code="SCJGJ",
                official_id="SCJGJ-008", text="欧阳晓筠女士：经查属实，已责令整改。",
                published_text="经查属实，已责令整改。", replied_at=datetime.now(UTC),
                answered_by=""))
    finally:
        engine.dispose()
    # The façade reads which columns exist when it starts: a second one, on this database.
    settings = facade.service.settings.model_copy(update={"open311_port": 0})
    engine = sa.create_engine(settings.resolved_database_url())
    server = open311_server(engine, settings, cipher=field_cipher(
        complainant_key_path(pki_dir)))
    running = asyncio.create_task(server.run())
    try:
        async with httpx.AsyncClient(base_url=server.url, verify=facade.ssl) as client:
            async def answered() -> httpx.Response:
                deadline = asyncio.get_running_loop().time() + 30
                while True:
                    try:
                        return await client.get(f"/requests/{number}.json")
                    except httpx.ConnectError:
                        if asyncio.get_running_loop().time() > deadline:
                            raise
                        await asyncio.sleep(0.05)
            [request] = (await answered()).json()
            closed = (await client.get("/requests.xml", params={"status": "closed"})).content
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        engine.dispose()
    assert request["status"] == "closed"
    assert request["status_notes"] == "经查属实，已责令整改。"
    assert datetime.fromisoformat(request["expected_datetime"]) == due
    assert "欧阳" not in json.dumps(request, ensure_ascii=False)
    assert [r["service_request_id"] for r in _xml_requests(closed)] == [number]


# ---- keys ---------------------------------------------------------------------------------


async def test_the_key_file_is_private_and_the_database_holds_only_hashes(
        facade: Facade) -> None:
    assert stat.S_IMODE(facade.key_file.stat().st_mode) == 0o600
    assert set(facade.keys) == {"12345", "LNZWFW", "GJZWFW"}
    dumped = json.dumps(facade.rows(), default=str)
    for key in facade.keys.values():
        assert key not in dumped
        assert key_hash(key) in dumped
    assert key_hash(facade.keys[HOTLINE]) == hashlib.sha256(
        facade.keys[HOTLINE].encode()).hexdigest()
    # A later start keeps the keys it wrote.
    prepare(DEFINITION, facade.service.settings)
    assert json.loads(facade.key_file.read_text()) == facade.keys
    # A key missing from the file is issued anew, and only that one.
    trimmed = dict(facade.keys)
    del trimmed[PORTAL]
    facade.key_file.write_text(json.dumps(trimmed))
    prepare(DEFINITION, facade.service.settings)
    again = json.loads(facade.key_file.read_text())
    assert again[HOTLINE] == facade.keys[HOTLINE]
    assert again[PORTAL] != facade.keys[PORTAL]
    assert stat.S_IMODE(facade.key_file.stat().st_mode) == 0o600


def _error(response: httpx.Response, fmt: str) -> tuple[int, str]:
    if fmt == "json":
        [error] = response.json()
        assert set(error) == {"code", "description"}
        return int(error["code"]), str(error["description"])
    root = _xml(response.content)
    assert root.tag == "errors"
    [error_element] = root
    assert error_element.tag == "error"
    return int(error_element.findtext("code") or 0), error_element.findtext("description") or ""


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_a_wrong_or_missing_key_is_refused_and_changes_nothing(
        facade: Facade, fmt: str) -> None:
    await _posted(facade)
    before = facade.rows()
    wrong = "o311_" + "A" * 43
    refused = [await facade.post({"api_key": wrong} | _case(), fmt=fmt, platform=None),
               await facade.post(_case(), fmt=fmt, platform=None),
               await facade.get(f"/requests.{fmt}", api_key=wrong),
               await facade.get(f"/tokens/x.{fmt}", api_key=wrong)]
    for response in refused:
        assert response.status_code == 403
        code, description = _error(response, fmt)
        assert code == 403 and "api_key" in description
    assert facade.rows() == before


async def test_a_platform_without_a_calling_system_cannot_post(facade: Facade) -> None:
    before = facade.rows()
    response = await facade.post(_case(), platform="GJZWFW")
    assert response.status_code == 403
    assert "GJZWFW" in _error(response, "json")[1]
    assert facade.rows() == before


# ---- bad input ----------------------------------------------------------------------------

_BAD_POSTS: list[tuple[str, dict[str, str], int, str]] = [
    ("no service_code", _case(service_code=""), 400, "service_code"),
    ("unknown service_code", _case(service_code="SC-99"), 404, "SC-99"),
    ("malformed service_code", _case(service_code="<x/>"), 404, "service_code"),
    ("oversized description", _case(description="长" * 4001), 400, "description"),
    ("description over the center's limit", _case(description="长" * 2001), 400,
     "description"),
    ("no description", _case(description=""), 400, "description"),
    ("lat is not a number", _case(lat="41.8N"), 400, "lat"),
    ("long is not a number", _case(long="east"), 400, "long"),
    ("lat out of range", _case(lat="95"), 400, "lat"),
    ("lat not finite", _case(lat="nan"), 400, "lat"),
    ("long infinite", _case(long="1e400"), 400, "long"),
    ("lat without long", _case(long=""), 400, "long"),
    ("no location", _case(lat="", long="", address_string=""), 400, "location"),
    ("address_id", _case(address_id="545483"), 400, "address_id"),
    ("no kind", _case(**{"attribute[kind]": ""}), 400, "kind"),
    ("unknown kind", _case(**{"attribute[kind]": "praise"}), 400, "kind"),
    ("urgent not a boolean", _case(**{"attribute[urgent]": "very"}), 400, "urgent"),
    ("unknown attribute", _case(**{"attribute[colour]": "red"}), 400, "colour"),
    ("multivalue attribute", _case(**{"attribute[kind][]": "report"}), 400, "kind"),
    ("bad external id", _case(**{"attribute[external_id]": "has space"}), 400, "external_id"),
    ("bad linked case", _case(**{"attribute[linked_case_number]": "X-1"}), 400,
     "linked_case_number"),
    ("unknown field", _case(colour="red"), 400, "colour"),
    ("no name", _case(first_name="", last_name=""), 400, "first_name"),
    ("bad phone", _case(phone="call me"), 400, "phone"),
    # Control characters, refused as gRPC refuses them (kernel.text), never a 500.
    ("NUL in the description", _case(description="超市\x00过期"), 400, "description"),
    ("ESC in a name", _case(first_name="张\x1b[31m"), 400, "first_name"),
    ("DEL in the address", _case(address_string="长安街\x7f1号"), 400, "address_string"),
    ("C1 in the description", _case(description="超市\x85过期"), 400, "description"),
    ("NUL in an attribute", _case(**{"attribute[external_id]": "HL-\x00"}), 400,
     "external_id"),
    # Degrees by a strict pattern: no underscores, exponents, inf or nan.
    ("lat with an underscore", _case(lat="4_1.8"), 400, "lat"),
    ("lat with an exponent", _case(lat="4e1"), 400, "lat"),
    ("long infinity", _case(long="inf"), 400, "long"),
    ("long spelled infinity", _case(long="-Infinity"), 400, "long"),
    ("lat hex", _case(lat="0x1p4"), 400, "lat"),
]


@pytest.mark.parametrize(("why", "fields", "status", "named"), _BAD_POSTS,
                         ids=[b[0] for b in _BAD_POSTS])
@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_a_bad_post_is_refused_in_the_error_format_and_writes_nothing(
        facade: Facade, why: str, fields: dict[str, str], status: int, named: str,
        fmt: str) -> None:
    before = facade.rows()
    response = await facade.post(fields, fmt=fmt)
    assert response.status_code == status, response.text
    code, description = _error(response, fmt)
    assert code == status
    assert named in description, description
    assert facade.rows() == before


_BAD_BODIES: list[tuple[str, str, bytes]] = [
    ("json body", "application/json", b'{"service_code": "SC-01"}'),
    ("xml body", "text/xml", b"<request><service_code>SC-01</service_code></request>"),
    ("json body sent as a form", "application/x-www-form-urlencoded",
     b'{"service_code": "SC-01", "description": "x"}'),
    ("broken json sent as a form", "application/x-www-form-urlencoded", b'{"service_code":'),
    ("xml body sent as a form", "application/x-www-form-urlencoded",
     b'<?xml version="1.0"?><request service_code="SC-01"/>'),
    ("multipart body", "multipart/form-data; boundary=x",
     b"--x\r\nContent-Disposition: form-data; name=\"service_code\"\r\n\r\nSC-01\r\n--x--"),
    ("not utf-8", "application/x-www-form-urlencoded", "description=投诉".encode("gb18030")),
    ("bad percent escape", "application/x-www-form-urlencoded", b"description=%E6%8A"),
    ("other charset", "application/x-www-form-urlencoded; charset=gb18030", b"a=b"),
    ("no content type", "", b"service_code=SC-01"),
    ("too large", "application/x-www-form-urlencoded", b"description=" + b"a" * 70_000),
    ("given twice", "application/x-www-form-urlencoded",
     b"service_code=SC-01&service_code=JT-02"),
]


@pytest.mark.parametrize(("why", "content_type", "body"), _BAD_BODIES,
                         ids=[b[0] for b in _BAD_BODIES])
async def test_a_body_that_is_not_a_form_is_refused_and_writes_nothing(
        facade: Facade, why: str, content_type: str, body: bytes) -> None:
    before = facade.rows()
    headers = {"content-type": content_type} if content_type else {}
    async with facade.client() as client:
        response = await client.post("/requests.xml", content=body, headers=headers,
                                     params={"api_key": facade.keys[HOTLINE]})
    assert response.status_code == 400, response.text
    assert _error(response, "xml")[0] == 400
    assert facade.rows() == before


_BAD_READS: list[tuple[str, str, dict[str, str], int]] = [
    ("date that is no date", "/requests.json", {"start_date": "yesterday"}, 400),
    ("date without a zone", "/requests.json", {"end_date": "2026-01-05T09:00:00"}, 400),
    ("start after end", "/requests.json",
     {"start_date": "2026-02-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}, 400),
    ("more than 90 days", "/requests.json",
     {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"}, 400),
    ("unknown status", "/requests.json", {"status": "pending"}, 400),
    ("date before 2000", "/requests.json", {"start_date": "1999-12-31T00:00:00Z"}, 400),
    ("date after 2100", "/requests.json", {"end_date": "2101-01-01T00:00:00Z"}, 400),
    ("date that overflows", "/requests.json", {"end_date": "9999-12-31T23:59:59-14:00"},
     400),
    ("date that underflows", "/requests.xml", {"start_date": "0001-01-01T00:00:00+14:00"},
     400),
    ("first date there is", "/requests.json", {"start_date": "0001-01-01T00:00:00Z"}, 400),
    ("last date there is", "/requests.json", {"end_date": "9999-12-31T23:59:59Z"}, 400),
    ("NUL in a read", "/requests.json", {"status": "open\x00"}, 400),
    ("C1 in a read", "/requests.xml", {"service_code": "SC-01\x9b"}, 400),
    ("malformed request id", "/requests.json", {"service_request_id": "1 OR 1=1"}, 400),
    ("malformed service code", "/requests.xml", {"service_code": "SC01"}, 400),
    ("unknown service code", "/requests.json", {"service_code": "SC-99"}, 404),
    ("a date given twice",
     "/requests.json?start_date=2026-01-01T00:00:00Z&start_date=2026-01-02T00:00:00Z", {},
     400),
    ("unknown format", "/requests.html", {}, 404),
    ("no format", "/services", {}, 404),
    ("unknown service", "/services/SC-99.json", {}, 404),
    ("unknown format of a service", "/services/SC-01.yaml", {}, 404),
    ("unknown request", "/requests/CP-20200101-000001.xml", {}, 404),
    ("malformed request", "/requests/nothing.json", {}, 404),
    ("unknown token", "/tokens/none.json", {}, 404),
    ("unknown resource", "/reports.json", {}, 404),
]


@pytest.mark.parametrize(("why", "path", "params", "status"), _BAD_READS,
                         ids=[b[0] for b in _BAD_READS])
async def test_a_bad_read_is_answered_in_the_error_format(
        facade: Facade, why: str, path: str, params: dict[str, str], status: int) -> None:
    response = await facade.get(path, **params)
    assert response.status_code == status, response.text
    fmt = "json" if path.split("?")[0].endswith(".json") else "xml"
    assert _error(response, fmt)[0] == status


async def test_a_method_the_resource_lacks_is_refused_in_the_error_format(
        facade: Facade) -> None:
    async with facade.client() as client:
        response = await client.delete("/requests.json")
    assert response.status_code == 405
    assert _error(response, "json")[0] == 405
    assert "GET" in response.headers["allow"]


async def test_the_facade_answers_over_tls_only_with_the_centers_certificate(
        facade: Facade) -> None:
    untrusted = ssl.create_default_context()
    async with httpx.AsyncClient(base_url=facade.base, verify=untrusted) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/services.json")
    plain = facade.base.replace("https://", "http://")
    async with httpx.AsyncClient(base_url=plain) as client:
        with pytest.raises(httpx.HTTPError):
            await client.get("/services.json")
