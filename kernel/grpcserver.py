"""The gRPC server every service runs, and the channel its clients open.

``create_server`` binds a TLS port that demands a client certificate from
the center's CA, adds health and reflection, and wraps every method
handler a service registers (``GovhallGuard``, once, when the server is
built) so that every call

1. identifies the calling system by its certificate and, before anything
   else, checks the registry of calling systems (``kernel.systems``): an
   unknown system, or an RPC its entry does not list, is PERMISSION_DENIED
   naming both, and nothing of the request is looked at;
2. turns a request that cannot be parsed into INVALID_ARGUMENT (grpc would
   answer INTERNAL),
3. takes the asserted official and binds the call's identifiers to every
   log line; the caller carries the system's registry entry, so that
   ``kernel.directory`` refuses officials the system may not speak for,
4. holds the request to the rules every request meets (kernel.wellformed:
   no control characters in text, clean NFC names, times in range),
5. checks the request against the rules in its proto (protovalidate); a rule
   that cannot be evaluated on the values given (a timestamp difference that
   overflows, say) is the request's fault, INVALID_ARGUMENT naming the field,
6. maps domain errors to their status codes with ``google.rpc.Status``
   details, and anything unexpected to INTERNAL, logged as a bug.

Health and reflection are open to any certificate of the CA.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import grpc
import protovalidate
import structlog
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from kernel import errors
from kernel.identity import Caller, official_from, set_current_caller, system_from
from kernel.logging import bind_call, bind_case_number
from kernel.pki import ca_cert_path, client_pair, server_pair
from kernel.systems import SystemRegistry
from kernel.wellformed import check_request, map_entry_path

log = structlog.get_logger("govhall.grpc")

#: grpcio-health-checking's asyncio servicer (its type stubs do not list it).
HealthServicer: Any = health.aio.HealthServicer  # type: ignore[attr-defined]

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
GenericHandler: TypeAlias = "grpc.GenericRpcHandler[Any, Any]"

_STATUS = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}

_UNGUARDED = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclass(frozen=True)
class MalformedRequest:
    """Stands in for a request whose bytes did not parse."""

    reason: str


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        if deserialize is None:
            return data
        try:
            return deserialize(data)
        except Exception as exc:  # any parse failure is the caller's
            return MalformedRequest(type(exc).__name__)
    return parse


def _status_of(error: errors.GovhallError) -> tuple[grpc.StatusCode, bytes]:
    code = next(c for cls, c in _STATUS.items() if isinstance(error, cls))
    status = status_pb2.Status(code=code.value[0], message=error.message)
    if error.violations:
        bad_request = error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in error.violations])
        status.details.add().Pack(bad_request)
    return code, status.SerializeToString()


def validate_request(request: Message) -> None:
    """Check ``request`` against its proto's rules; raise InvalidArgument listing all breaches.

    A rule whose evaluation fails on the values given (CEL arithmetic that
    overflows, for example) is answered INVALID_ARGUMENT too, naming the
    field whose rules could not be evaluated.
    """
    try:
        violations = protovalidate.collect_violations(request)
    except protovalidate.EvaluationError as error:
        field = _unevaluable(request, "") or "(message)"
        raise errors.InvalidArgument(
            f"invalid request: {field}: the values given cannot be checked against its rules "
            f"({error})",
            violations=[errors.FieldViolation(
                field, f"the values cannot be checked against the rules ({error})")],
        ) from error
    if violations:
        found = [errors.FieldViolation(
            ".".join(e.field_name for e in v.proto.field.elements)
            if v.proto.field is not None and v.proto.field.elements else "(message)",
            v.proto.message) for v in violations]
        summary = "; ".join(f"{v.field}: {v.description}" for v in found[:5])
        raise errors.InvalidArgument(f"invalid request: {summary}", violations=found)


def _unevaluable(message: Message, path: str) -> str:
    """The deepest field path under ``message`` whose own rules fail to evaluate.

    protovalidate's EvaluationError names the rule, not the field; validating
    each set message field on its own finds where it lies. When no field
    fails alone, the rule belongs to ``message`` itself: ``path`` is returned.
    """
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            children = [(map_entry_path(field.name, key), value[key]) for key in value]
        elif field.is_repeated:
            children = [(f"{field.name}[{i}]", item) for i, item in enumerate(value)]
        else:
            children = [(field.name, value)]
        for name, child in children:
            if not isinstance(child, Message):
                continue
            try:
                protovalidate.collect_violations(child)
            except protovalidate.EvaluationError:
                return _unevaluable(child, f"{path}.{name}" if path else name)
    return path


#: Whether each request message type has a ``case_number`` field (asking a message for a
#: field it does not have raises, and most requests have none).
_HAS_CASE_NUMBER: dict[type, bool] = {}


def _case_number(request: Any) -> str:
    kind = type(request)
    has = _HAS_CASE_NUMBER.get(kind)
    if has is None:
        has = _HAS_CASE_NUMBER[kind] = hasattr(request, "case_number")
    if not has:
        return ""
    value = request.case_number
    return value if isinstance(value, str) else ""


class GovhallGuard:
    """Admits every call of the methods it wraps (steps 1-6 of the module's docstring).

    Each method's handler is wrapped once, when the server is built
    (``GuardedServer``): a call goes straight to its wrapped behaviour, with
    no interceptor pipeline in front of it (grpc.aio runs an interceptor's
    coroutines on every call). The wrapper holds nothing of a call: every
    call still admits its caller (``_admit``).
    """

    def __init__(self, registry: SystemRegistry) -> None:
        self._registry = registry

    def wrap(self, method: str, handler: Handler) -> Handler:
        """``handler`` guarded, for the full method name ``method`` (``/package.Service/Rpc``)."""
        if method.startswith(_UNGUARDED):
            return handler
        return self._wrap(method, handler)

    def _wrap(self, method: str, handler: Handler) -> Handler:
        parse = _tolerant(handler.request_deserializer)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary), request_deserializer=parse,
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream),  # type: ignore[arg-type]
                request_deserializer=parse,
                response_serializer=handler.response_serializer)
        return handler

    async def _admit(self, method: str, request: Any, context: Context) -> None:
        system = system_from(list(context.auth_context().get("x509_common_name", [])))
        bind_call(system=system, method=method)
        scope = await self._registry.admit(system, method)
        if isinstance(request, MalformedRequest):
            raise errors.InvalidArgument(
                f"the request could not be parsed as the message {method} expects "
                f"({request.reason})")
        metadata = {k: v for k, v in (context.invocation_metadata() or ())
                    if isinstance(v, str)}
        set_current_caller(Caller(system, official_from(metadata), scope))
        # Before the case number is logged: it could hold control characters.
        check_request(request)
        case_number = _case_number(request)
        if case_number:
            bind_case_number(case_number)
        validate_request(request)

    async def _refuse(self, context: Context, error: errors.GovhallError,
                      started: float) -> None:
        code, details = _status_of(error)
        log.info("rpc.refused", code=code.name, reason=error.message,
                 ms=round((time.perf_counter() - started) * 1000, 2))
        await context.abort(code, error.message,
                            trailing_metadata=(("grpc-status-details-bin", details),))

    async def _bug(self, context: Context, started: float) -> None:
        log.exception("rpc.bug", ms=round((time.perf_counter() - started) * 1000, 2))
        await context.abort(grpc.StatusCode.INTERNAL,
                            "internal error: this is a bug in govhall and has been logged")

    def _unary(self, method: str, inner: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        async def behaviour(request: Any, context: Context) -> Any:
            started = time.perf_counter()
            try:
                await self._admit(method, request, context)
                response = await inner(request, context)
            except grpc.aio.AbortError:
                raise
            except errors.GovhallError as error:
                await self._refuse(context, error, started)
            except Exception:
                await self._bug(context, started)
            log.info("rpc.ok", ms=round((time.perf_counter() - started) * 1000, 2))
            return response
        return behaviour

    def _stream(self, method: str, inner: Callable[..., AsyncIterator[Any]]) -> Callable[..., Any]:
        async def behaviour(request: Any, context: Context) -> AsyncIterator[Any]:
            started = time.perf_counter()
            try:
                await self._admit(method, request, context)
                async for response in inner(request, context):
                    yield response
            except grpc.aio.AbortError:
                raise
            except errors.GovhallError as error:
                await self._refuse(context, error, started)
            except Exception:
                await self._bug(context, started)
        return behaviour


class _GuardedGenericHandler(grpc.GenericRpcHandler):  # type: ignore[type-arg]
    """A generic handler whose method handlers are guarded, each wrapped on its first call."""

    def __init__(self, inner: GenericHandler, guard: GovhallGuard) -> None:
        self._inner = inner
        self._guard = guard
        #: Each method's wrapped handler, with the handler it wraps (at most one per method
        #: the inner handler serves: unknown methods have no handler).
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._guard.wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


class GuardedServer(grpc.aio.Server):
    """The server as a service's ``register`` sees it: every handler added is guarded.

    ``add_*Servicer_to_server`` adds a service's handlers both ways grpc knows
    (generic and registered); both are wrapped here, once, so whichever grpc
    finds a call by goes through ``GovhallGuard``.
    """

    def __init__(self, server: grpc.aio.Server, guard: GovhallGuard) -> None:
        self._server = server
        self._guard = guard

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Iterable[GenericHandler]) -> None:
        self._server.add_generic_rpc_handlers(
            [_GuardedGenericHandler(handler, self._guard) for handler in generic_rpc_handlers])

    def add_registered_method_handlers(self, service_name: str,
                                       method_handlers: dict[str, Handler]) -> None:
        self._server.add_registered_method_handlers(service_name, {  # type: ignore[attr-defined]
            name: self._guard.wrap(f"/{service_name}/{name}", handler)
            for name, handler in method_handlers.items()})

    def add_insecure_port(self, address: str) -> int:
        return self._server.add_insecure_port(address)

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        return self._server.add_secure_port(address, server_credentials)

    async def start(self) -> None:
        await self._server.start()

    async def stop(self, grace: float | None = None) -> None:
        await self._server.stop(grace)

    async def wait_for_termination(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        return await self._server.wait_for_termination(timeout)


def server_credentials(pki_dir: Path) -> grpc.ServerCredentials:
    """TLS that demands a client certificate signed by the center's CA."""
    key, cert = server_pair(pki_dir).read()
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca_cert_path(pki_dir).read_bytes(),
        require_client_auth=True)


def channel_credentials(pki_dir: Path, system: str) -> grpc.ChannelCredentials:
    """A client's TLS credentials: trust the center's CA, present ``system``'s certificate."""
    key, cert = client_pair(pki_dir, system).read()
    return grpc.ssl_channel_credentials(
        root_certificates=ca_cert_path(pki_dir).read_bytes(), private_key=key,
        certificate_chain=cert)


def secure_channel(address: str, *, pki_dir: Path, system: str) -> grpc.aio.Channel:
    return grpc.aio.secure_channel(address, channel_credentials(pki_dir, system))


async def create_server(
    address: str,
    *,
    register: Callable[[grpc.aio.Server], None],
    service_names: Sequence[str],
    pki_dir: Path,
    registry: SystemRegistry,
    max_message_bytes: int = 4 * 1024 * 1024,
) -> tuple[grpc.aio.Server, int, Any]:
    """A started-not-yet server on ``address`` (port 0 picks one); returns it and its port."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    register(GuardedServer(server, GovhallGuard(registry)))
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names: Iterable[str] = (*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(list(names), server)
    port = server.add_secure_port(address, server_credentials(pki_dir))
    if port == 0:
        raise OSError(f"could not bind {address}")
    return server, port, health_servicer


async def mark_serving(health_servicer: Any,
                       service_names: Sequence[str]) -> None:
    for name in ("", *service_names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)


async def mark_not_serving(health_servicer: Any) -> None:
    await health_servicer.enter_graceful_shutdown()


