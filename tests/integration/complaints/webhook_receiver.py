"""A platform's webhook endpoint on 127.0.0.1, verifying each request with standardwebhooks.

A real HTTP server in a thread. Every request is kept with its headers and
body and whether ``standardwebhooks.Webhook(secret).verify`` accepted it;
the first ``refuse_first`` requests are answered 500 (the platform down),
later ones ``status``. Only a verified request answered 2xx counts as an
accepted event, once per webhook-id, as a platform deduplicates.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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


@contextmanager
def webhook_receiver(**options: Any) -> Iterator[Receiver]:
    """A receiver listening on 127.0.0.1 (a free port) until the block ends."""
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
    receiver = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/govhall/events",
                        **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
