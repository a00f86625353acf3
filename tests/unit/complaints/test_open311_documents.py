"""GeoReport documents: XML elements and list wrappers as the spec lays them out, JSON by
its mapping of that XML."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

from services.complaints.open311.documents import Format, errors_document, render
from services.complaints.open311.keys import key_hash, new_api_key, read_key_file


def _xml(body: bytes) -> ElementTree.Element:
    return ElementTree.fromstring(body)  # noqa: S314 (our own rendering)


def test_a_list_element_holds_its_items_under_their_spec_names() -> None:
    definition = {"service_code": "SC-01", "attributes": [
        {"variable": True, "code": "kind", "datatype_description": None, "order": 1,
         "values": [{"key": "report", "name": "举报"}]}]}
    body = render("service_definition", definition, Format.XML)
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n<service_definition>')
    root = _xml(body)
    assert root.findtext("./attributes/attribute/variable") == "true"
    assert root.findtext("./attributes/attribute/values/value/name") == "举报"
    empty = root.find("./attributes/attribute/datatype_description")
    assert empty is not None and empty.text is None
    assert json.loads(render("service_definition", definition, Format.JSON)) == definition


def test_errors_are_one_list_in_both_formats() -> None:
    document = errors_document(403, "invalid api_key")
    root = _xml(render("errors", document, Format.XML))
    assert [(e.tag, e.findtext("code"), e.findtext("description")) for e in root] == [
        ("error", "403", "invalid api_key")]
    assert json.loads(render("errors", document, Format.JSON)) == [
        {"code": 403, "description": "invalid api_key"}]


def test_keys_are_random_and_only_their_hash_is_kept() -> None:
    first, second = new_api_key(), new_api_key()
    assert first != second and first.startswith("o311_") and len(first) > 40
    assert key_hash(first) != key_hash(second) and len(key_hash(first)) == 64
    assert first not in key_hash(first)


def test_an_unreadable_key_file_reads_as_no_keys(tmp_path: Path) -> None:
    folder = tmp_path
    (folder / "garbage.json").write_text("{not json")
    (folder / "list.json").write_text("[1, 2]")
    assert read_key_file(folder / "garbage.json") == {}
    assert read_key_file(folder / "list.json") == {}
    assert read_key_file(folder / "missing.json") == {}
