from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.complaints.main import DEFINITION
from tests.support import ServiceUnderTest, fresh_database_url, service_under_test


@pytest.fixture
async def complaints(backend: str, tmp_path: Path,
                     pki_dir: Path) -> AsyncIterator[ServiceUnderTest]:
    """The complaints service on a fresh database holding the sample directory; plain-http
    webhooks to the loopback host are taken (the receivers here are http on 127.0.0.1).
    No audit checkpoint is published on the service's own timer: tests compare the rows
    before and after a refused call, and a checkpoint signed meanwhile (the first poll
    comes 5 s after the start, reached on a loaded machine) is no write of the call's."""
    url = fresh_database_url(backend, "complaints", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  webhook_allow_loopback=True,
                                  audit_checkpoint_every_entries=0,
                                  audit_checkpoint_interval_seconds=0) as service:
        yield service
