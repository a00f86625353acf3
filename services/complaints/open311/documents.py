"""GeoReport v2 documents in its two formats: XML as the spec lays it out, JSON by its
"Spark convention" mapping of that XML (a list for a list element, an object for the rest).

Documents are plain values: a ``dict`` is an element with children in key
order, a ``list`` is a list element whose items are named by ``ITEM_NAMES``
(``services`` holds ``service`` elements), ``None`` an empty element (``null``
in JSON), ``bool`` ``true``/``false``. Names a view leaves out are simply not
in the dict, so they are in neither rendering.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any
from xml.etree import ElementTree

#: The element each list element of the spec holds.
ITEM_NAMES = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}
_XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'


class Format(StrEnum):
    """The formats a resource is asked for by its extension (``services.xml``)."""

    XML = "xml"
    JSON = "json"

    @property
    def media_type(self) -> str:
        return "text/xml; charset=utf-8" if self is Format.XML else (
            "application/json; charset=utf-8")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _element(name: str, value: Any) -> ElementTree.Element:
    element = ElementTree.Element(name)
    if isinstance(value, dict):
        for child_name, child in value.items():
            element.append(_element(child_name, child))
    elif isinstance(value, list):
        item_name = ITEM_NAMES[name]
        for item in value:
            element.append(_element(item_name, item))
    elif value is not None:
        element.text = _text(value)
    return element


def render(root: str, document: Any, fmt: Format) -> bytes:
    """``document`` under the root element ``root`` (XML) or as its JSON mapping."""
    if fmt is Format.JSON:
        return json.dumps(document, ensure_ascii=False).encode("utf-8")
    body = ElementTree.tostring(_element(root, document), encoding="unicode")
    return (_XML_DECLARATION + body).encode("utf-8")


def errors_document(code: int, description: str) -> list[dict[str, Any]]:
    """GeoReport's error list: one error, its HTTP status code and what went wrong."""
    return [{"code": code, "description": description}]
