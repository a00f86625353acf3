"""The Temporal client every process uses, and the custom search attributes.

Search attributes carry identifiers and states only, never personal data.
They are registered when the dev server starts (deploy/local) and in tests.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter

CASE_NUMBER = SearchAttributeKey.for_keyword("CaseNumber")
ITEM_CODE = SearchAttributeKey.for_keyword("ItemCode")
DEPARTMENT = SearchAttributeKey.for_keyword("Department")
STAGE = SearchAttributeKey.for_keyword("Stage")
SLA_STATE = SearchAttributeKey.for_keyword("SlaState")
DUE_TIME = SearchAttributeKey.for_datetime("DueTime")
CASE_KIND = SearchAttributeKey.for_keyword("CaseKind")

SEARCH_ATTRIBUTES = (CASE_NUMBER, ITEM_CODE, DEPARTMENT, STAGE, SLA_STATE, DUE_TIME, CASE_KIND)

#: The task queue of workflow code (activities run on each service's own queue).
WORKFLOW_TASK_QUEUE = "govhall-workflows"


def search_attribute_flags() -> list[str]:
    """``--search-attribute Name=Type`` arguments for ``temporal server start-dev``."""
    kinds = {"KEYWORD": "Keyword", "DATETIME": "Datetime"}
    flags: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}"]
    return flags


async def connect(address: str, namespace: str = "default", *,
                  api_key: str | None = None) -> Client:
    """A client that converts dataclasses and pydantic models alike.

    ``api_key``: the JWT a cluster's authorizer wants (sent as
    ``authorization: Bearer …``); none on the embedded dev server.
    """
    return await Client.connect(address, namespace=namespace, api_key=api_key,
                                data_converter=pydantic_data_converter)
