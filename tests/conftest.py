from __future__ import annotations

from pathlib import Path

import pytest

from kernel.pki import SAMPLE_SYSTEMS, ensure_pki
from tests.support import BACKENDS


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local CA with the server and sample client certificates, made once per run."""
    directory = tmp_path_factory.mktemp("pki")
    ensure_pki(directory, SAMPLE_SYSTEMS)
    return directory


@pytest.fixture(scope="session")
def foreign_pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Certificates from another CA, which govhall's servers must not trust."""
    directory = tmp_path_factory.mktemp("foreign-pki")
    ensure_pki(directory)
    return directory


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each integration test runs on SQLite, and on PostgreSQL when it is configured."""
    return str(request.param)
