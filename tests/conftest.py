from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from kernel.pki import SAMPLE_SYSTEMS, ensure_pki
from kernel.temporal import SEARCH_ATTRIBUTES, TemporalSecurity, data_converter
from tests.support import BACKENDS

BIN = Path(sys.executable).parent


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


@pytest.fixture(scope="session")
def temporal_security(pki_dir: Path) -> TemporalSecurity:
    """The payload keys every process under test shares: those under ``pki_dir``."""
    return TemporalSecurity.embedded(pki_dir)


@pytest.fixture(scope="session")
async def temporal_dev_server(
        temporal_security: TemporalSecurity) -> AsyncIterator[WorkflowEnvironment]:
    """One real Temporal dev server for the whole run, custom search attributes registered.

    Its client encrypts payloads with the keys under ``pki_dir``, as services do.
    """
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=data_converter(temporal_security.codec),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_log_level="error",
        dev_server_extra_args=["--ui-disable-news-fetch"],
    )
    try:
        yield environment
    finally:
        await environment.shutdown()


@pytest.fixture
async def time_skipping(
        temporal_security: TemporalSecurity) -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server, for timers measured in working days."""
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=data_converter(temporal_security.codec),
    )
    await environment.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(namespace=environment.client.namespace, search_attributes={
            key.name: IndexedValueType.ValueType(key.indexed_value_type)
            for key in SEARCH_ATTRIBUTES}))
    try:
        yield environment
    finally:
        await environment.shutdown()
