"""A platform's webhook endpoint on 127.0.0.1, verifying each request with standardwebhooks.

A real HTTP server in a thread. Every request is kept with its headers and
body and whether ``standardwebhooks.Webhook(secret).verify`` accepted it;
the first ``refuse_first`` requests are answered 500 (the platform down),
later ones ``status``. Only a verified request answered 2xx counts as an
accepted event, once per webhook-id, as a platform deduplicates.
"""

from __future__ import annotations

import datetime
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from standardwebhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int


@dataclass
class Receiver:
    url: str
    secret: str = ""
    refuse_first: int = 0
    status: int = 200
    extra_headers: dict[str, str] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    accepted: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: The TLS server names clients asked for (https receivers only).
    server_names: list[str | None] = field(default_factory=list)

    def take(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            try:
                payload = Webhook(self.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                payload, verified = None, False
            if not verified:
                answered = 401
            elif len(self.requests) < self.refuse_first:
                answered = 500
            else:
                answered = self.status
            self.requests.append(Received(headers, body, verified, answered))
            if verified and 200 <= answered < 300:
                self.accepted.setdefault(headers["webhook-id"], payload)
            return answered


@dataclass(frozen=True)
class NameCertificate:
    """A TLS context serving a certificate for one name, and a client context trusting
    only the authority that signed it."""

    server: ssl.SSLContext
    client: ssl.SSLContext


def name_certificate(directory: Path, name: str) -> NameCertificate:
    """A throwaway authority and a certificate it signs for ``name`` (files in ``directory``)."""
    now = datetime.datetime.now(datetime.UTC)
    authority_key = ec.generate_private_key(ec.SECP256R1())
    authority_name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "webhook test CA")])
    authority = (x509.CertificateBuilder().subject_name(authority_name)
                 .issuer_name(authority_name).public_key(authority_key.public_key())
                 .serial_number(x509.random_serial_number())
                 .not_valid_before(now - datetime.timedelta(minutes=5))
                 .not_valid_after(now + datetime.timedelta(hours=1))
                 .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                 .sign(authority_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]))
            .issuer_name(authority_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(authority_key, hashes.SHA256()))
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=authority.public_bytes(
        serialization.Encoding.PEM).decode("ascii"))
    return NameCertificate(server, client)


@contextmanager
def webhook_receiver(*, tls: ssl.SSLContext | None = None, name: str = "127.0.0.1",
                     **options: Any) -> Iterator[Receiver]:
    """A receiver listening on 127.0.0.1 (a free port) until the block ends.

    ``tls``: served over https with this context (its URL names ``name``, which the
    client must be told resolves to 127.0.0.1); plain http otherwise.
    """
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            answered = receiver.take({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(answered)
            for name, value in receiver.extra_headers.items():
                self.send_header(name, value)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads ``requests``."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    scheme = "http"
    if tls is not None:
        scheme = "https"

        def heard(_: ssl.SSLObject, server_name: str | None, __: ssl.SSLContext) -> None:
            receiver.server_names.append(server_name)
        tls.sni_callback = heard
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    receiver = Receiver(url=f"{scheme}://{name}:{server.server_address[1]}/govhall/events",
                        **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
