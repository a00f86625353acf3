"""Who may call what, and speak for whom: the matrix, generated from the sample registry.

The four services run once for the whole module (on SQLite, and on
PostgreSQL when configured), with the sample registry of calling systems
they load on first start. The cases are generated, not written out:

- every (system, RPC) pair, for every registered system and one the CA
  certified but nobody registered, and every RPC of every service as its
  descriptors list it: an empty request is refused with PERMISSION_DENIED
  naming the system and the RPC, leaving the service's audit log as it
  was, exactly when the registry does not list the RPC for the system;
- every (system, department and role of the sample staff) pair, one
  official for each: the official is named on an RPC the system may call
  that needs that role, and is refused for the system exactly when the
  registry does not let it speak for them.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from govhall.common.v1 import systems_pb2
from govhall.complaints.v1 import complaints_pb2
from govhall.intake.v1 import intake_pb2
from govhall.review.v1 import review_pb2
from govhall.trading.v1 import trading_pb2
from kernel.pki import client_pair, issue
from kernel.service import ServiceDefinition, served_service_names
from kernel.systems import EVERY
from services.complaints.main import DEFINITION as COMPLAINTS
from services.intake.main import DEFINITION as INTAKE
from services.review.main import DEFINITION as REVIEW
from services.trading.main import DEFINITION as TRADING
from tests.support import (
    BACKENDS,
    SAMPLE_DIR,
    ServiceUnderTest,
    as_official,
    fresh_database_url,
    registered_systems,
    sample_registry,
    sample_staff,
    service_under_test,
)

DEFINITIONS: dict[str, ServiceDefinition] = {
    "intake": INTAKE, "review": REVIEW, "trading": TRADING, "complaints": COMPLAINTS}
#: A system with a certificate of the center's CA and no entry in the registry.
UNREGISTERED = "unregistered-system"
SYSTEMS = [*registered_systems(), UNREGISTERED]


def _rpcs() -> list[tuple[str, str]]:
    """(service, "package.Service/Method") for every RPC every service serves."""
    pool = descriptor_pool.Default()
    return [(service, f"{name}/{method.name}")
            for service, definition in DEFINITIONS.items()
            for name in served_service_names(definition)
            for method in pool.FindServiceByName(name).methods]


RPCS = _rpcs()


# ---- the oracle: the sample file read as JSON, not through the product's Registry ---------
#
# The expected answers come from deploy/sample/systems.json read here by
# hand (an entry's own RPCs plus the shared "*" entry's, a "Service/*"
# wildcard, a "*" department), so a fault in kernel.systems' scope rules
# cannot agree with itself. KNOWN pins answers written out by a person.

_ENTRIES: dict[str, dict[str, Any]] = {
    entry["name"]: entry
    for entry in json.loads((SAMPLE_DIR / "systems.json").read_text("utf-8"))["systems"]}


#: RPCs only an entry naming them may call, never a "Service/*" wildcard: one service asking
#: another about a record (trading's CheckTenderLink, for the complaints service only).
_NAMED_ONLY = {"govhall.trading.v1.TradingService/CheckTenderLink"}


def _may_call(system: str, rpc: str) -> bool:
    entry = _ENTRIES.get(system)
    if entry is None or system == "*":
        return False
    listed = set(entry["rpcs"]) | set(_ENTRIES["*"]["rpcs"])
    return rpc in listed or (rpc not in _NAMED_ONLY and f"{rpc.split('/')[0]}/*" in listed)


def _may_speak_for(system: str, department: str, role: str) -> bool:
    entry = _ENTRIES.get(system)
    if entry is None or system == "*":
        return False
    pairs = {(p["department_code"], p["role"]) for p in entry["speaks_for"]}
    return (department, role) in pairs or ("*", role) in pairs


#: (system, RPC) answers a person checked against the registry's descriptions.
KNOWN_CALLS: dict[tuple[str, str], bool] = {
    ("hotline-12345", "govhall.intake.v1.IntakeService/SubmitApplication"): False,
    ("hotline-12345", "govhall.review.v1.ReviewService/DecideCase"): False,
    ("hotline-12345", "govhall.review.v1.ReviewService/LoadHolidaySchedule"): False,
    ("hotline-12345", "govhall.intake.v1.IntakeService/PublishApprovalItemVersion"): False,
    ("hotline-12345", "govhall.trading.v1.TradingService/ListExperts"): False,
    ("trading-platform", "govhall.intake.v1.IntakeService/RevokeDecision"): False,
    ("trading-platform", "govhall.review.v1.ReviewService/DecideCase"): False,
    ("department-system-scjgj", "govhall.review.v1.ReviewService/DecideCase"): True,
    ("department-system-scjgj", "govhall.intake.v1.IntakeService/SubmitApplication"): False,
    ("department-system-scjgj", "govhall.review.v1.ReviewService/LoadHolidaySchedule"): False,
    ("hall-window-system", "govhall.intake.v1.IntakeService/SubmitApplication"): True,
    ("hall-window-system", "govhall.review.v1.ReviewService/DecideCase"): False,
    ("center-seal-system", "govhall.review.v1.ReviewService/DecideCase"): True,
    ("operator", "govhall.review.v1.ReviewService/LoadHolidaySchedule"): True,
    ("operator", "govhall.common.v1.CallingSystemsService/SetCallingSystem"): True,
    ("supervision-system", "govhall.common.v1.CallingSystemsService/SetCallingSystem"): False,
    ("unregistered-system", "govhall.intake.v1.IntakeService/VerifyDecision"): False,
    ("hotline-12345", "govhall.intake.v1.IntakeService/VerifyDecision"): True,
    ("workflows-worker", "govhall.review.v1.ReviewService/RecordRefusedAct"): True,
    ("workflows-worker", "govhall.review.v1.ReviewService/DecideCase"): False,
    ("department-system-scjgj", "govhall.review.v1.ReviewService/RecordRefusedAct"): False,
    ("operator", "govhall.review.v1.ReviewService/RecordRefusedAct"): False,
    ("hotline-12345", "govhall.trading.v1.TradingService/ListFeed"): True,
    ("hotline-12345", "govhall.trading.v1.TradingService/RevealSeed"): False,
    ("supervision-system", "govhall.trading.v1.TradingService/RevealSeed"): True,
    ("hotline-12345", "govhall.trading.v1.TradingService/CommitSeed"): False,
    ("supervision-system", "govhall.trading.v1.TradingService/CommitSeed"): True,
    ("supervision-system", "govhall.trading.v1.TradingService/OpenDraw"): False,
    ("department-system-zjj", "govhall.trading.v1.TradingService/OpenDraw"): False,
    ("supervision-system", "govhall.trading.v1.TradingService/WatchTrades"): True,
    ("supervision-system", "govhall.trading.v1.TradingService/ListTradeAlerts"): True,
    ("supervision-system", "govhall.trading.v1.TradingService/GetTradeStatistics"): True,
    ("operator", "govhall.trading.v1.TradingService/WatchTrades"): True,
    ("hotline-12345", "govhall.trading.v1.TradingService/WatchTrades"): False,
    ("bidder-system-bd0001", "govhall.trading.v1.TradingService/WatchTrades"): False,
    ("bidder-system-bd0001", "govhall.trading.v1.TradingService/ListTradeAlerts"): False,
    # A bidder objects through its own system (for its own bidder only: the use case checks).
    ("bidder-system-bd0001", "govhall.trading.v1.TradingService/ObjectToTender"): True,
    ("bidder-system-bd0004", "govhall.trading.v1.TradingService/ObjectToTender"): True,
    ("bidder-system-bd0001", "govhall.trading.v1.TradingService/AnswerObjection"): False,
    ("bidder-system-bd0001", "govhall.trading.v1.TradingService/AmendTender"): False,
    ("hotline-12345", "govhall.trading.v1.TradingService/ObjectToTender"): False,
    ("expert-system-ex0002", "govhall.trading.v1.TradingService/ObjectToTender"): False,
    ("department-system-zjj", "govhall.trading.v1.TradingService/GetTradeStatistics"): False,
    ("bidder-system-bd0001", "govhall.trading.v1.TradingService/PlaceListingBid"): True,
    ("bidder-system-bd0001", "govhall.trading.v1.TradingService/PlaceAuctionBid"): True,
    ("bidder-system-bd0001", "govhall.trading.v1.TradingService/RegisterBuyer"): True,
    ("bidder-system-bd0001", "govhall.trading.v1.TradingService/PublishLandListing"): False,
    ("bidder-system-bd0001", "govhall.trading.v1.TradingService/DiscloseProperty"): False,
    ("bidder-system-bd0001", "govhall.trading.v1.TradingService/RecordAgreement"): False,
    ("bidder-system-bd0001", "govhall.trading.v1.TradingService/GetListing"): True,
    ("trading-platform", "govhall.trading.v1.TradingService/PublishLandListing"): True,
    ("trading-platform", "govhall.trading.v1.TradingService/DiscloseProperty"): True,
    ("trading-platform", "govhall.trading.v1.TradingService/RecordAgreement"): True,
    ("operator", "govhall.trading.v1.TradingService/PublishLandListing"): True,
    ("hotline-12345", "govhall.trading.v1.TradingService/GetListing"): True,
    ("hotline-12345", "govhall.trading.v1.TradingService/PlaceListingBid"): False,
    ("hotline-12345", "govhall.trading.v1.TradingService/PublishLandListing"): False,
    ("supervision-system", "govhall.trading.v1.TradingService/PlaceAuctionBid"): False,
    ("supervision-system", "govhall.trading.v1.TradingService/RecordAgreement"): False,
    ("expert-system-ex0002", "govhall.trading.v1.TradingService/PlaceListingBid"): False,
    ("department-system-zjj", "govhall.trading.v1.TradingService/RegisterBuyer"): False,
    ("unregistered-system", "govhall.trading.v1.TradingService/GetListing"): False,
    ("bidder-system-bd0001", "govhall.trading.v1.TradingService/DeclareAuctionInterest"): True,
    ("hotline-12345", "govhall.trading.v1.TradingService/DeclareAuctionInterest"): False,
    ("department-system-zjj", "govhall.trading.v1.TradingService/DeclareAuctionInterest"): False,
    ("hotline-12345", "govhall.trading.v1.TradingService/ListListings"): True,
    ("bidder-system-bd0002", "govhall.trading.v1.TradingService/ListListings"): True,
    ("unregistered-system", "govhall.trading.v1.TradingService/ListListings"): False,
    ("department-system-scjgj", "govhall.complaints.v1.ComplaintsService/SignForComplaint"): True,
    ("department-system-scjgj", "govhall.complaints.v1.ComplaintsService/ReplyToComplaint"): True,
    ("department-system-scjgj",
     "govhall.complaints.v1.ComplaintsService/DispatchComplaint"): False,
    ("department-system-scjgj", "govhall.complaints.v1.ComplaintsService/RateComplaint"): False,
    ("complaint-dispatch-system",
     "govhall.complaints.v1.ComplaintsService/DispatchComplaint"): True,
    ("complaint-dispatch-system", "govhall.complaints.v1.ComplaintsService/MergeComplaint"): True,
    ("complaint-dispatch-system",
     "govhall.complaints.v1.ComplaintsService/ReplyToComplaint"): False,
    ("hotline-12345", "govhall.complaints.v1.ComplaintsService/RateComplaint"): True,
    ("hotline-12345", "govhall.complaints.v1.ComplaintsService/ReplyToComplaint"): False,
    ("hotline-12345", "govhall.complaints.v1.ComplaintsService/SetDeadlinePolicy"): False,
    ("operator", "govhall.complaints.v1.ComplaintsService/SetDeadlinePolicy"): True,
    ("supervision-system", "govhall.complaints.v1.ComplaintsService/GetComplaintMetrics"): True,
    ("operator", "govhall.complaints.v1.ComplaintsService/GetComplaintMetrics"): True,
    ("hotline-12345", "govhall.complaints.v1.ComplaintsService/GetComplaintMetrics"): False,
    ("department-system-scjgj",
     "govhall.complaints.v1.ComplaintsService/GetComplaintMetrics"): False,
    ("complaints-service", "govhall.intake.v1.IntakeService/CheckCaseLink"): True,
    ("complaints-service", "govhall.intake.v1.IntakeService/GetCase"): False,
    ("complaints-service", "govhall.complaints.v1.ComplaintsService/GetComplaint"): False,
    ("complaints-service", "govhall.review.v1.ReviewService/ListHolidaySchedules"): True,
    ("complaints-service", "govhall.review.v1.ReviewService/LoadHolidaySchedule"): False,
    ("trading-service", "govhall.review.v1.ReviewService/ListHolidaySchedules"): True,
    ("trading-service", "govhall.review.v1.ReviewService/LoadHolidaySchedule"): False,
    ("trading-service", "govhall.review.v1.ReviewService/DecideCase"): False,
    ("trading-service", "govhall.intake.v1.IntakeService/CheckCaseLink"): False,
    ("trading-service", "govhall.trading.v1.TradingService/AnnounceTender"): False,
    ("hotline-12345", "govhall.review.v1.ReviewService/ListHolidaySchedules"): False,
    ("operator", "govhall.intake.v1.IntakeService/CheckCaseLink"): False,
    ("supervision-system", "govhall.intake.v1.IntakeService/CheckCaseLink"): False,
    ("complaints-service", "govhall.trading.v1.TradingService/CheckTenderLink"): True,
    ("complaints-service", "govhall.trading.v1.TradingService/AnnounceTender"): False,
    ("operator", "govhall.trading.v1.TradingService/CheckTenderLink"): False,
    ("trading-platform", "govhall.trading.v1.TradingService/CheckTenderLink"): False,
    ("supervision-system", "govhall.trading.v1.TradingService/CheckTenderLink"): False,
    ("hotline-12345", "govhall.trading.v1.TradingService/CheckTenderLink"): False,
    ("hotline-12345", "govhall.complaints.v1.ComplaintsService/ListPlatformEvents"): True,
    ("provincial-complaint-portal",
     "govhall.complaints.v1.ComplaintsService/ListPlatformEvents"): True,
    ("hotline-12345", "govhall.complaints.v1.ComplaintsService/SetPlatformWebhook"): False,
    ("operator", "govhall.complaints.v1.ComplaintsService/SetPlatformWebhook"): True,
    ("department-system-scjgj",
     "govhall.complaints.v1.ComplaintsService/ListPlatformEvents"): False,
    ("trading-platform", "govhall.complaints.v1.ComplaintsService/SetPlatformWebhook"): False,
    ("tenderer-system-jyj", "govhall.trading.v1.TradingService/SubmitScoreSheet"): True,
    ("tenderer-system-jyj", "govhall.review.v1.ReviewService/ClaimTask"): False,
    ("tenderer-system-jyj", "govhall.review.v1.ReviewService/DecideCase"): False,
    ("tenderer-system-jyj", "govhall.trading.v1.TradingService/PlaceListingBid"): False,
    ("tenderer-system-jyj", "govhall.trading.v1.TradingService/SeatEvaluationCommittee"): False,
}

#: (system, department, role) answers a person checked: the attack the registry answers.
KNOWN_SPEAKING: dict[tuple[str, str, str], bool] = {
    ("hotline-12345", "SCJGJ", "window_clerk"): False,
    ("hotline-12345", "SCJGJ", "leader"): False,
    ("trading-platform", "ZWFWZX", "seal_custodian"): False,
    ("department-system-scjgj", "SCJGJ", "leader"): True,
    ("department-system-scjgj", "ZJJ", "leader"): False,
    ("department-system-scjgj", "ZWFWZX", "seal_custodian"): False,
    ("department-system-zjj", "SCJGJ", "reviewer"): False,
    ("hall-window-system", "ZJJ", "window_clerk"): True,
    ("hall-window-system", "SCJGJ", "reviewer"): False,
    ("center-seal-system", "ZWFWZX", "seal_custodian"): True,
    ("operator", "ZWFWZX", "operator"): True,
    ("supervision-system", "SCJGJ", "leader"): False,
    ("tenderer-system-jyj", "JYJ", "reviewer"): True,
    ("tenderer-system-jyj", "JYJ", "leader"): False,
    ("tenderer-system-jyj", "SCJGJ", "reviewer"): False,
    ("expert-system-ex0002", "JYJ", "reviewer"): False,
}


@pytest.mark.parametrize(("system", "rpc", "expected"),
                         [(s, r, e) for (s, r), e in KNOWN_CALLS.items()])
def test_the_oracle_and_the_product_agree_with_the_pinned_calls(
        system: str, rpc: str, expected: bool) -> None:
    scope = sample_registry().scope_of(system)
    assert _may_call(system, rpc) is expected
    assert (scope is not None and scope.may_call(rpc)) is expected


@pytest.mark.parametrize(("system", "department", "role", "expected"),
                         [(*key, e) for key, e in KNOWN_SPEAKING.items()])
def test_the_oracle_and_the_product_agree_with_the_pinned_speakers(
        system: str, department: str, role: str, expected: bool) -> None:
    scope = sample_registry().scope_of(system)
    assert _may_speak_for(system, department, role) is expected
    assert (scope is not None and scope.may_speak_for(department, role)) is expected


# ---- probes: an RPC that needs a role, with a request that passes validation -----------
#
# Each request reaches the check of the acting official and, for an official
# the system may speak for in that role, then stops at something missing
# (NOT_FOUND, INVALID_ARGUMENT) or only reads: it never changes anything.

UNKNOWN_CASE = "AP-20000101-000001"


def _tomorrow() -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    return stamp


@dataclass(frozen=True)
class Probe:
    service: str
    rpc: str
    request: Callable[[], Message]


PROBES: dict[str, list[Probe]] = {
    "window_clerk": [Probe("intake", "govhall.intake.v1.IntakeService/WithdrawApplication",
                           lambda: intake_pb2.WithdrawApplicationRequest(
                               case_number=UNKNOWN_CASE, reason="申请人撤回"))],
    "reviewer": [Probe("review", "govhall.review.v1.ReviewService/ClaimTask",
                       lambda: review_pb2.ClaimTaskRequest(
                           case_number=UNKNOWN_CASE, stage=review_pb2.APPROVAL_STAGE_REVIEW)),
                 # A tenderer's official on an evaluation committee (a representative).
                 Probe("trading", "govhall.trading.v1.TradingService/SubmitScoreSheet",
                       lambda: trading_pb2.SubmitScoreSheetRequest(
                           request_id="00000000-0000-4000-8000-000000000001",
                           tender_no="TD-20000101-000001", member_id="JYJ-003",
                           bidder_id="BD-0001", compliant=True))],
    "leader": [Probe("review", "govhall.review.v1.ReviewService/GrantDelegation",
                     lambda: review_pb2.GrantDelegationRequest(
                         deputy_id="ZZZ-999", reason="出差",
                         period=review_pb2.DelegationPeriod(valid_until=_tomorrow())))],
    "seal_custodian": [Probe("review", "govhall.review.v1.ReviewService/ClaimTask",
                             lambda: review_pb2.ClaimTaskRequest(
                                 case_number=UNKNOWN_CASE,
                                 stage=review_pb2.APPROVAL_STAGE_SEAL))],
    "supervisor": [Probe("review", "govhall.review.v1.ReviewService/ListEscalations",
                         lambda: review_pb2.ListEscalationsRequest(open_only=True))],
    "operator": [Probe("intake", "govhall.common.v1.CallingSystemsService/RemoveCallingSystem",
                       lambda: systems_pb2.RemoveCallingSystemRequest(name="no-such-system"))],
    "trading_officer": [Probe("trading", "govhall.trading.v1.TradingService/SetExpertAvailability",
                              lambda: trading_pb2.SetExpertAvailabilityRequest(
                                  id="EX-9999", available=True))],
    "complaint_dispatcher": [Probe(
        "complaints", "govhall.complaints.v1.ComplaintsService/SetRoutingRule",
        lambda: complaints_pb2.SetRoutingRuleRequest(
            category_code="ZZ-99", department_code="NOWHERE", basis="职能调整")), Probe(
        "complaints", "govhall.complaints.v1.ComplaintsService/ListComplaintInbox",
        lambda: complaints_pb2.ListComplaintInboxRequest())],
    "complaint_handler": [Probe(
        "complaints", "govhall.complaints.v1.ComplaintsService/ListComplaintInbox",
        lambda: complaints_pb2.ListComplaintInboxRequest())],
}


def _probe(system: str, role: str) -> Probe | None:
    """An RPC the system may call that needs ``role``; else any it may call naming an official."""
    callable_probes = [p for probes in PROBES.values() for p in probes
                       if _may_call(system, p.rpc)]
    own = [p for p in PROBES[role] if _may_call(system, p.rpc)]
    found = own or callable_probes
    return found[0] if found else None


def _pairs() -> list[tuple[str, str, str]]:
    """(department, role, official): the first official of each pair in the sample staff."""
    first: dict[tuple[str, str], str] = {}
    for official in sorted(sample_staff().values(), key=lambda o: o.id):
        for role in official.roles:
            first.setdefault((official.department_code, role), official.id)
    return [(department, role, official) for (department, role), official in sorted(first.items())]


PAIRS = _pairs()
OFFICIAL_CASES = [(system, *pair) for system, pair in itertools.product(SYSTEMS, PAIRS)
                  if _probe(system, pair[1]) is not None]


# ---- the services, once -----------------------------------------------------------------


@dataclass
class Suite:
    services: dict[str, ServiceUnderTest]
    channels: dict[tuple[str, str], grpc.aio.Channel] = field(default_factory=dict)

    def channel(self, service: str, system: str) -> grpc.aio.Channel:
        key = (service, system)
        if key not in self.channels:
            self.channels[key] = self.services[service].channel(system)
        return self.channels[key]

    def audit_entries(self, service: str) -> int:
        with self.services[service].running.engine.connect() as connection:
            return int(connection.exec_driver_sql("SELECT count(*) FROM audit_log").scalar_one())

    async def call(self, service: str, system: str, rpc: str, request: bytes,
                   official: str = "") -> tuple[grpc.StatusCode, str]:
        method = self.channel(service, system).unary_unary(
            f"/{rpc}", request_serializer=None, response_deserializer=None)
        try:
            await method(request, metadata=as_official(official) if official else (), timeout=10)
        except grpc.aio.AioRpcError as error:
            return error.code(), error.details() or ""
        return grpc.StatusCode.OK, ""


@pytest.fixture(scope="module", params=BACKENDS)
async def suite(request: pytest.FixtureRequest, pki_dir: Path,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Suite]:
    stranger = client_pair(pki_dir, UNREGISTERED)
    if not stranger.cert.exists():
        issue(pki_dir, stranger, common_name=UNREGISTERED, server=False)
    directory = tmp_path_factory.mktemp("matrix")
    services: dict[str, ServiceUnderTest] = {}
    contexts: list[Any] = []
    try:
        for name, definition in DEFINITIONS.items():
            context = service_under_test(
                definition, database_url=fresh_database_url(str(request.param), name, directory),
                pki_dir=pki_dir, temporal_address="127.0.0.1:1")
            services[name] = await context.__aenter__()
            contexts.append(context)
        running = Suite(services)
        yield running
        for channel in running.channels.values():
            await channel.close(grace=None)
    finally:
        for context in reversed(contexts):
            await context.__aexit__(None, None, None)


def test_the_matrix_covers_every_system_rpc_and_pair() -> None:
    assert len(SYSTEMS) >= 10 and len(RPCS) >= 60
    assert {service for service, _ in RPCS} == set(DEFINITIONS)
    assert len(PAIRS) >= 100
    assert len(OFFICIAL_CASES) >= 6 * len(PAIRS)
    # The pinned answers name real RPCs, systems and pairs (a typo would pin nothing).
    served = {rpc for _, rpc in RPCS}
    assert {rpc for _, rpc in KNOWN_CALLS} <= served
    assert {system for system, _ in KNOWN_CALLS} | {s for s, _, _ in KNOWN_SPEAKING} <= set(SYSTEMS)
    assert {(d, r) for _, d, r in KNOWN_SPEAKING} <= {(d, r) for d, r, _ in PAIRS}


@pytest.mark.parametrize(("system", "service", "rpc"),
                         [(system, service, rpc) for system in SYSTEMS for service, rpc in RPCS],
                         ids=lambda value: str(value))
async def test_a_system_calls_exactly_the_rpcs_the_registry_lists(
        suite: Suite, system: str, service: str, rpc: str) -> None:
    before = suite.audit_entries(service)
    code, details = await suite.call(service, system, rpc, b"")
    if _may_call(system, rpc):
        assert code != grpc.StatusCode.PERMISSION_DENIED, details
    else:
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert system in details and rpc in details
        assert suite.audit_entries(service) == before


@pytest.mark.parametrize(("system", "department", "role", "official"), OFFICIAL_CASES,
                         ids=lambda value: str(value))
async def test_a_system_speaks_exactly_for_the_officials_the_registry_lets_it(
        suite: Suite, system: str, department: str, role: str, official: str) -> None:
    probe = _probe(system, role)
    assert probe is not None
    allowed = _may_speak_for(system, department, role)
    before = suite.audit_entries(probe.service)
    code, details = await suite.call(probe.service, system, probe.rpc,
                                     probe.request().SerializeToString(), official)
    if allowed:
        assert probe in PROBES[role], f"{system} speaks for {role} but may call no RPC needing it"
        assert code != grpc.StatusCode.PERMISSION_DENIED, details
    else:
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert f"system {system} may not speak for official {official}" in details
    assert suite.audit_entries(probe.service) == before


#: The systems that may call no RPC needing an official (probes cover every such RPC).
SILENT_SYSTEMS = [system for system in SYSTEMS
                  if not any(_may_call(system, p.rpc) for probes in PROBES.values()
                             for p in probes)]


def test_the_systems_that_call_no_rpc_needing_an_official_are_the_platforms_and_worker(
        ) -> None:
    # The bidders' systems act for their bidder (the bidders directory), never an official.
    # The experts' systems act for their expert (the trading registry), never an official,
    # but SubmitScoreSheet takes a representative's sheet from a system that speaks for the
    # tenderer's official: they are probed with it, and speak for nobody.
    bidders = {f"bidder-system-bd000{n}" for n in range(1, 5)}
    assert set(SILENT_SYSTEMS) == {"provincial-complaint-portal", "hotline-12345",
                                   "workflows-worker", "complaints-service",
                                   "trading-service", UNREGISTERED} | bidders


@pytest.mark.parametrize("system", SILENT_SYSTEMS)
def test_a_system_that_may_call_no_rpc_needing_an_official_speaks_for_nobody(
        system: str) -> None:
    entry = sample_registry().systems.get(system)
    assert entry is None or entry.speaks_for == frozenset()


async def test_health_and_reflection_answer_any_certificate_of_the_ca(suite: Suite) -> None:
    channel = suite.channel("intake", UNREGISTERED)
    health = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=""))
    responses = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = [s.name async for r in responses for s in r.list_services_response.service]
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert "govhall.common.v1.CallingSystemsService" in names


async def test_the_system_is_checked_before_the_request_or_the_official_is_read(
        suite: Suite) -> None:
    rpc = "govhall.intake.v1.IntakeService/SubmitApplication"
    for system in (UNREGISTERED, "hotline-12345"):
        garbage = await suite.call("intake", system, rpc, b"\xff\xfe\x00\x01garbage")
        malformed_official = await suite.call("intake", system, rpc, b"", "robert'); --")
        assert garbage[0] == malformed_official[0] == grpc.StatusCode.PERMISSION_DENIED
    # The shared entry is not a system: a certificate named "*" would get nothing either.
    assert sample_registry().scope_of(EVERY) is None


async def test_the_public_reads_are_every_registered_systems(suite: Suite) -> None:
    shared = sample_registry().systems[EVERY].rpcs
    assert "govhall.intake.v1.IntakeService/VerifyDecision" in shared
    for system in registered_systems():
        code, details = await suite.call(
            "intake", system, "govhall.intake.v1.IntakeService/GetSealKeys", b"")
        assert code == grpc.StatusCode.OK, (system, details)
    code, _ = await suite.call("intake", UNREGISTERED,
                               "govhall.intake.v1.IntakeService/GetSealKeys", b"")
    assert code == grpc.StatusCode.PERMISSION_DENIED

