"""The codec server: decodes govhall's encrypted Temporal payloads for operators.

Temporal's UI and CLI see only ciphertext (kernel.codec). An operator who
must read a case's payloads points them at this server, which speaks
Temporal's remote codec protocol: ``POST …/decode`` and ``POST …/encode``
with ``{"payloads": [...]}`` in protobuf JSON, the namespace in the
``X-Namespace`` header.

Who may decode: the caller presents a client certificate signed by the
center's CA whose common name is an operator system (``operator`` by
default) — the same certificate operators use for gRPC — or, for the
``temporal`` CLI, which sends headers but no client certificate, the
operator's bearer token (``<pki>/codec-operator.token``, 0600, like the
operator's key). The server asks for a certificate in the TLS handshake but
does not require one there, because browsers send CORS preflights without
credentials; every request to ``/decode`` and ``/encode`` without an
operator's verified certificate or token gets 401 (none, or a wrong token)
or 403 (another system, or a page from an origin other than the UI's) and
nothing is decoded.

In the browser: import the operator's certificate (``clients/operator.p12``)
and trust the center's CA, then in the Temporal UI's codec server settings
turn on "Include cross-origin credentials" so the browser presents the
certificate (the dev server's UI config sets only the endpoint).
The Temporal UI's other option, "pass access token", forwards the UI's own
OIDC login token, which the dev server's UI does not have.

``python -m kernel.codec_server``; settings from GOVHALL_CODEC_* variables.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import signal
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from google.protobuf import json_format
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.api.common.v1 import Payloads

from kernel.codec import CodecError, EncryptingCodec, Keyring, codec_dir
from kernel.keyfiles import create_once
from kernel.logging import configure_logging
from kernel.pki import ca_cert_path, client_pair, server_pair
from kernel.privatefiles import set_private_umask
from kernel.settings import VAR

log = structlog.get_logger("govhall.codec_server")

#: Who a request presenting the operator's bearer token is, in the log.
BEARER_CALLER = "operator (bearer)"
#: Largest request body: a page of history events with their payloads.
MAX_BODY_BYTES = 16 * 1024 * 1024
_ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"


def token_path(pki_dir: Path) -> Path:
    """Where the operator's bearer token for the codec server lives."""
    return pki_dir / "codec-operator.token"


class CodecServerSettings(BaseSettings):
    """GOVHALL_CODEC_*: where the codec server listens and whom it serves."""

    model_config = SettingsConfigDict(env_prefix="GOVHALL_CODEC_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8234, ge=0, le=65535)
    #: The center's CA, server certificate and the operators' client certificates.
    pki_dir: Path = VAR / "pki"
    #: Folder of the payload keys; default ``<pki_dir>/temporal-codec``.
    codec_dir: Path | None = None
    #: Common names of the client certificates allowed to decode and encode.
    operator_systems: list[str] = Field(default_factory=lambda: ["operator"])
    #: Origins of the Temporal UI pages allowed to call from a browser.
    ui_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:8233", "http://localhost:8233"])
    #: The operator's bearer token (for the ``temporal`` CLI, which cannot present a
    #: client certificate to a codec server); default ``<pki_dir>/codec-operator.token``.
    token_file: Path | None = None
    #: Namespaces whose payloads may be decoded; empty means any.
    namespaces: list[str] = Field(default_factory=list)
    log_level: str = "info"

    def resolved_codec_dir(self) -> Path:
        return self.codec_dir or codec_dir(self.pki_dir)

    def resolved_token_file(self) -> Path:
        return self.token_file or token_path(self.pki_dir)

    @property
    def endpoint(self) -> str:
        return f"https://{self.host}:{self.port}"


def server_tls(pki_dir: Path) -> ssl.SSLContext:
    """TLS with the center's server certificate; asks for (not requires) a client one."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    pair = server_pair(pki_dir)
    context.load_cert_chain(pair.cert, pair.key)
    context.load_verify_locations(ca_cert_path(pki_dir))
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


def caller_system(request: web.Request) -> str | None:
    """The common name of the client certificate the TLS handshake verified, if any."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    names = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(
        x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def operator_token(path: Path) -> bytes:
    """The operator's bearer token for the codec server, made once (0600)."""
    made = create_once(path, secrets.token_urlsafe(32).encode() + b"\n")
    return made.strip()


def create_app(settings: CodecServerSettings, keyring: Keyring) -> web.Application:
    """The aiohttp application: /decode, /encode (operators only), CORS, /health."""
    codec = EncryptingCodec(keyring)
    token = operator_token(settings.resolved_token_file())
    origins = frozenset(settings.ui_origins)
    operators = frozenset(settings.operator_systems)
    namespaces = frozenset(settings.namespaces)

    @web.middleware
    async def cors(request: web.Request,
                   handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                   ) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS":
            if origin not in origins:
                return _error(403, "this origin may not call the codec server")
            response: web.StreamResponse = web.Response(status=204)
            response.headers.update({
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
                "Access-Control-Max-Age": "600",
            })
        else:
            try:
                response = await handler(request)
            except web.HTTPException as error:
                response = error
        if origin in origins:
            response.headers.update({"Access-Control-Allow-Origin": origin or "",
                                     "Access-Control-Allow-Credentials": "true",
                                     "Vary": "Origin"})
        return response

    def admit(request: web.Request) -> tuple[str, str] | web.Response:
        origin = request.headers.get("Origin")
        if origin is not None and origin not in origins:
            # A page elsewhere could make the browser send the operator's certificate.
            return _error(403, "this origin may not call the codec server")
        authorization = request.headers.get("Authorization", "")
        if authorization:
            scheme, _, presented = authorization.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                    presented.strip().encode(), token):
                log.warning("codec.refused", system="bad-token", path=request.path)
                return _error(401, "the bearer token is not the operator's")
            system: str | None = BEARER_CALLER
        else:
            system = caller_system(request)
        if system is None:
            return _error(401, "present an operator's client certificate from the center's CA "
                               "or the operator's bearer token")
        if system != BEARER_CALLER and system not in operators:
            log.warning("codec.refused", system=system, path=request.path)
            return _error(403, f"system {system!r} may not decode payloads")
        namespace = request.headers.get("X-Namespace", "")
        if namespaces and namespace not in namespaces:
            return _error(403, f"namespace {namespace!r} is not served here")
        return system, namespace

    async def read_payloads(request: web.Request) -> Payloads | web.Response:
        try:
            return json_format.Parse(await request.text(), Payloads(),
                                     ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError, ValueError) as error:
            return _error(400, f"the body is not a JSON Payloads message: {error}")

    def reply(payloads: Payloads) -> web.Response:
        return web.Response(text=json_format.MessageToJson(payloads, indent=None),
                            content_type="application/json")

    async def convert(request: web.Request) -> web.Response:
        # Only the last part of the path says which: the UI may mount it under any prefix.
        action = request.path.rstrip("/").rsplit("/", 1)[-1]
        if action not in ("decode", "encode"):
            return _error(404, "POST to …/decode or …/encode")
        admitted = admit(request)
        if isinstance(admitted, web.Response):
            return admitted
        system, namespace = admitted
        payloads = await read_payloads(request)
        if isinstance(payloads, web.Response):
            return payloads
        try:
            converted = (await codec.decode(payloads.payloads) if action == "decode"
                         else await codec.encode(payloads.payloads))
        except CodecError as error:
            return _error(422, str(error))
        log.info(f"codec.{action}d", system=system, namespace=namespace,
                 payloads=len(converted))
        return reply(Payloads(payloads=converted))

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "serving"})

    app = web.Application(middlewares=[cors], client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/health", health)
    app.router.add_post("/{path:.*}", convert)
    return app


def browser_bundle(pki_dir: Path, system: str = "operator") -> Path:
    """``clients/<system>.p12``: the client certificate and key for a browser to import.

    Unencrypted, like the ``.key`` beside it, and as private (0600).
    """
    pair = client_pair(pki_dir, system)
    key = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
    certificate = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    authority = x509.load_pem_x509_certificate(ca_cert_path(pki_dir).read_bytes())
    assert isinstance(key, ec.EllipticCurvePrivateKey)  # kernel.pki makes P-256 keys
    bundle = pkcs12.serialize_key_and_certificates(
        system.encode(), key, certificate, [authority], serialization.NoEncryption())
    path = pair.cert.with_suffix(".p12")
    create_once(path, bundle)
    return path


async def start(settings: CodecServerSettings) -> tuple[web.AppRunner, int]:
    """Listen (TLS) and serve in the background; the runner and the port bound."""
    keyring = Keyring.load(settings.resolved_codec_dir())
    runner = web.AppRunner(create_app(settings, keyring), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port,
                       ssl_context=server_tls(settings.pki_dir))
    await site.start()
    port = int(runner.addresses[0][1])
    log.info("codec_server.started", endpoint=f"https://{settings.host}:{port}",
             operators=settings.operator_systems, origins=settings.ui_origins)
    return runner, port


async def serve(settings: CodecServerSettings) -> None:
    """Serve until SIGINT/SIGTERM."""
    runner, _ = await start(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    set_private_umask()
    settings = CodecServerSettings()
    configure_logging(service="codec-server", level=settings.log_level)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()

