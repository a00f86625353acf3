from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.review.main import DEFINITION
from tests.support import ServiceUnderTest, fresh_database_url, service_under_test


@pytest.fixture
async def review(backend: str, tmp_path: Path, pki_dir: Path) -> AsyncIterator[ServiceUnderTest]:
    url = fresh_database_url(backend, "review", tmp_path)
    async with service_under_test(DEFINITION, database_url=url, pki_dir=pki_dir) as service:
        yield service
