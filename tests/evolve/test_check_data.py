"""``check-data`` on both backends: valid, invalid, inherited and orphaned documents."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from datastore.blueprint.loader import load_blueprint
from datastore.documents.change import Change
from datastore.documents.service import DocumentService
from datastore.evolve.check import check_data, format_report
from datastore.storage.engine import Database

ROOT = Path(__file__).resolve().parents[2]

BLUEPRINT = """\
openapi: 3.1.0
info: {title: t, version: "1"}
paths:
  /events/{id}:
    put:
      x-datastore-acl: public
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/event'}
      responses: {'200': {description: ok}}
  /events/{id}/notes/{nid}:
    put:
      x-datastore-acl: public
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/note'}
      responses: {'200': {description: ok}}
components:
  schemas:
    event:
      type: object
      properties:
        name: {type: string}
        size: {type: integer, maximum: 10}
        extends: {type: [string, "null"], x-datastore-source: document.$extends}
      required: [name]
    note:
      type: object
      properties:
        text: {type: string}
      required: [text]
      additionalProperties: false
"""


@pytest.fixture
def blueprint(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "api.yaml").write_text(BLUEPRINT)
    return load_blueprint(tmp_path / "api.yaml").document


def put(
    service: DocumentService, path: str, body: dict[str, Any], extends: str | None = None
) -> None:
    collection, _, doc_id = path.strip("/").rpartition("/")
    asyncio.run(service.put(collection, doc_id, Change(body, extends)))


def test_valid_invalid_inherited_and_orphaned_documents(
    database: Database, space: str, blueprint: dict[str, Any]
) -> None:
    service = DocumentService(database, space)
    put(service, "/events/e1", {"name": "One", "size": 3})
    put(service, "/events/e2", {"size": 99})
    put(service, "/events/base", {"name": "Base", "size": 1})
    put(service, "/events/child", {"size": 2}, extends="/events/base")  # name inherited
    put(service, "/events/grandchild", {"size": 50}, extends="/events/child")
    put(service, "/events/e1/notes/n1", {"text": "hi"})
    put(service, "/events/e1/notes/n2", {"text": "hi", "mood": "x"})
    put(service, "/archive/a1", {"anything": True})
    put(service, "/events/e1/old/o1", {})
    put(DocumentService(database, space + "x"), "/events/elsewhere", {})

    report = check_data(database, blueprint, space=space)
    assert (report.checked, report.invalid, report.orphans) == (9, 3, 2)
    assert not report.ok
    events = report.collections[(space, "/events")]
    assert (events.checked, events.invalid) == (5, 2)
    reasons = {i.path: [(r.name, r.reason) for r in i.reasons] for i in events.examples}
    assert sorted(reasons["/events/e2"]) == [
        ("name", "is required"),
        ("size", "must be at most 10"),
    ]
    assert [name for name, _ in reasons["/events/grandchild"]] == ["size"]  # name inherited
    notes = report.collections[(space, "/events/{id}/notes")]
    assert (notes.checked, notes.invalid) == (2, 1)
    assert [(r.name, r.reason) for r in notes.examples[0].reasons] == [
        ("mood", "is not an allowed property")
    ]
    assert report.collections[(space, "/archive")].orphaned
    assert report.collections[(space, "/events/*/old")].orphaned

    text = format_report(report, "text")
    assert f"/events (space {space}): 5 checked, 2 invalid" in text
    assert "  /events/e2\n" in text
    assert "    name: is required" in text
    assert "/archive (space " in text
    assert "(orphans)" in text
    assert text.endswith("9 documents checked: 3 invalid, 2 orphaned")
    as_json = json.loads(format_report(report, "json"))
    assert (as_json["checked"], as_json["invalid"], as_json["orphans"]) == (9, 3, 2)
    first = as_json["collections"][0]
    assert first["examples"][0]["invalid-params"][0].keys() == {"name", "reason"}

    one = check_data(database, blueprint, space=space, collection="events/e1/notes", examples=0)
    assert (one.checked, one.invalid, one.collections[(space, "/events/{id}/notes")].examples) == (
        2,
        1,
        [],
    )
    seen: list[tuple[int, int | None]] = []
    check_data(database, blueprint, space=space, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(9, 9)]


def test_dynamic_collections_accept_any_name(database: Database, space: str) -> None:
    service = DocumentService(database, space)
    put(service, "/customers/c1", {"name": "x"})
    put(service, "/orders/o1", {"total": 3})
    document = load_blueprint(ROOT / "blueprints" / "codehooks.yaml").document
    report = check_data(database, document, space=space)
    assert report.ok
    assert {key for _, key in report.collections} == {"/customers", "/orders"}
    assert report.checked == 2


def test_an_empty_space_is_fine(database: Database, space: str, blueprint: dict[str, Any]) -> None:
    report = check_data(database, blueprint, space=space)
    assert report.ok
    assert format_report(report, "text") == "0 documents checked: 0 invalid, 0 orphaned"
