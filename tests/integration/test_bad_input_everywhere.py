"""No request, however malformed, gets INTERNAL or UNKNOWN from any RPC of any service.

For every unary method of every service (the registry's included): bytes
that do not parse, an empty message, and a message whose every string field
is huge or holds control characters, sent by a sample system that may call
the method, naming an official it may speak for. Each must be refused (or
answered) with a status a caller can act on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor

from kernel.service import ServiceDefinition, served_service_names
from services.complaints.main import DEFINITION as COMPLAINTS
from services.intake.main import DEFINITION as INTAKE
from services.review.main import DEFINITION as REVIEW
from services.trading.main import DEFINITION as TRADING
from tests.support import (
    as_official,
    fresh_database_url,
    official_for,
    service_under_test,
    system_for,
)

DEFINITIONS = {"intake": INTAKE, "review": REVIEW, "trading": TRADING, "complaints": COMPLAINTS}
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


def _methods(definition: ServiceDefinition) -> Iterator[MethodDescriptor]:
    from google.protobuf import descriptor_pool

    pool = descriptor_pool.Default()
    for name in served_service_names(definition):
        for method in pool.FindServiceByName(name).methods:
            if not method.client_streaming and not method.server_streaming:
                yield method


def _filled(descriptor: Any, text: str, depth: int = 0) -> Any:
    """A message with every string field set to ``text``, recursing into messages."""
    message = message_factory.GetMessageClass(descriptor)()
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                getattr(message, field.name).extend([text, text])
            else:
                setattr(message, field.name, text)
        elif field.type == FieldDescriptor.TYPE_MESSAGE and depth < 2 and not (
                field.message_type.GetOptions().map_entry) and (
                not field.message_type.full_name.startswith("google.protobuf.")):
            child = _filled(field.message_type, text, depth + 1)
            if field.is_repeated:
                getattr(message, field.name).append(child)
            else:
                getattr(message, field.name).CopyFrom(child)
    return message


@pytest.mark.parametrize("service", sorted(DEFINITIONS))
async def test_no_malformed_request_is_an_internal_error(
        service: str, tmp_path: Path, pki_dir: Path) -> None:
    definition = DEFINITIONS[service]
    url = fresh_database_url("sqlite", service, tmp_path)
    outcomes: dict[str, grpc.StatusCode] = {}
    refusals: list[str] = []
    async with service_under_test(definition, database_url=url, pki_dir=pki_dir,
                                  temporal_address="127.0.0.1:1") as running:
        for method in _methods(definition):
            rpc = f"{method.containing_service.full_name}/{method.name}"
            system = system_for(rpc)
            official = official_for(system)
            async with running.channel(system) as channel:
                call = channel.unary_unary(f"/{rpc}", request_serializer=None,
                                           response_deserializer=None)
                cases = {
                    "garbage": b"\xff\xfe\x00\x01garbage",
                    "empty": b"",
                    "huge": _filled(method.input_type, "法" * 20_000).SerializeToString(),
                    "control": _filled(method.input_type, "\x00\x1b[2J\u202e").SerializeToString(),
                }
                for label, payload in cases.items():
                    try:
                        await call(payload, metadata=as_official(official) if official else (),
                                   timeout=10)
                        outcomes[f"{method.name}/{label}"] = grpc.StatusCode.OK
                    except grpc.aio.AioRpcError as error:
                        outcomes[f"{method.name}/{label}"] = error.code()
                        refusals.append(error.details() or "")
    assert outcomes
    bad = {k: v for k, v in outcomes.items() if v in NEVER}
    assert bad == {}
    # Every call got past the registry of calling systems to the request itself.
    assert [r for r in refusals if "may not call" in r] == []
    # Huge text never gets through validation into a handler.
    texts = {m.name for m in _methods(definition) if _has_text(m.input_type)}
    assert texts
    passed = {k for k, v in outcomes.items()
              if k.endswith("/huge") and k.split("/")[0] in texts and v == grpc.StatusCode.OK}
    assert passed == set()


def _has_text(descriptor: Any, depth: int = 0) -> bool:
    return any(f.type == FieldDescriptor.TYPE_STRING or (
        f.type == FieldDescriptor.TYPE_MESSAGE and depth < 2
        and not f.message_type.full_name.startswith("google.protobuf.")
        and _has_text(f.message_type, depth + 1)) for f in descriptor.fields)
