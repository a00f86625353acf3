"""The Open311 façade's HTTPS server: uvicorn inside the complaints process.

TLS with the center's server certificate (kernel.pki), the one the gRPC
server presents, so a platform trusts both through the center's CA. The
socket is bound when the server is made (a bad port stops the start at
once, and port 0 is known before serving); ``run`` serves until cancelled,
then closes the listener and lets requests in flight finish. uvicorn's own
signal handling is left out: the complaints process owns SIGINT/SIGTERM and
stops the façade with everything else.
"""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import Callable
from pathlib import Path

import structlog
import uvicorn
from sqlalchemy import Engine

from kernel.fieldcipher import FieldCipher
from kernel.groupcommit import GroupCommit
from kernel.pki import server_pair
from services.complaints.app.cases import Push, Submitted
from services.complaints.open311.api import BASE_PATH, open311_app

log = structlog.get_logger("govhall.complaints.open311")


class Open311Server:
    """The façade on its own socket, ready to ``run``."""

    def __init__(self, engine: Engine, *, cipher: FieldCipher, host: str, port: int,
                 pki_dir: Path, grace_seconds: float = 5.0,
                 intake: GroupCommit[Push, Submitted] | None = None,
                 wake: Callable[[], None] | None = None) -> None:
        pair = server_pair(pki_dir)
        self.host = host
        self._socket = socket.create_server((host, port), reuse_port=False)
        self.port: int = self._socket.getsockname()[1]
        self._config = uvicorn.Config(
            open311_app(engine, cipher=cipher, intake=intake, wake=wake),
            ssl_certfile=str(pair.cert), ssl_keyfile=str(pair.key), lifespan="off",
            log_config=None, access_log=False, server_header=False,
            timeout_graceful_shutdown=math.ceil(grace_seconds))
        self._server = uvicorn.Server(self._config)

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}{BASE_PATH}"

    async def run(self) -> None:
        """Serve until cancelled; then stop taking connections and finish those in flight."""
        self._config.load()
        self._server.lifespan = self._config.lifespan_class(self._config)
        sockets = [self._socket]
        await self._server.startup(sockets=sockets)
        log.info("open311.started", url=self.url)
        try:
            await asyncio.Event().wait()
        finally:
            self._server.should_exit = True
            await self._server.shutdown(sockets=sockets)
            log.info("open311.stopped", url=self.url)

    def close(self) -> None:
        """Release the socket of a server that never ran."""
        self._socket.close()
