from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kernel.db import make_engine
from services.intake.main import DEFINITION
from tests.integration.intake.sealing import Sealing, closed_port
from tests.support import fresh_database_url, service_under_test
from tests.unit.workflows.fakes import Signers


@pytest.fixture
def signers(pki_dir: Path) -> Signers:
    """Intake's and review's keys in the run's PKI, published before a service loads them."""
    return Signers(pki_dir)


@pytest.fixture
async def sealing(backend: str, tmp_path: Path, pki_dir: Path,
                  signers: Signers) -> AsyncIterator[Sealing]:
    """The intake service with Temporal out of reach, and the seal activity beside it."""
    url = fresh_database_url(backend, "intake", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir,
                                  temporal_address=closed_port()) as service:
        engine = make_engine(url)
        try:
            yield Sealing(service, engine, signers)
        finally:
            engine.dispose()
