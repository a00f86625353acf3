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
    webhooks to the loopback host are taken (the receivers here are http on 127.0.0.1)."""
    url = fresh_database_url(backend, "complaints", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  webhook_allow_loopback=True) as service:
        yield service
