"""Import and export: formats, validation with line numbers, skip/abort, round trips."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from datastore.storage.documents import DocumentStore
from datastore.storage.engine import Database
from datastore.transfer import TransferError, export_documents, import_documents, records
from tests.test_cli import run

BLUEPRINTS = Path(__file__).resolve().parents[1] / "blueprints"


def count(database: Database, space: str, collection: str = "pets") -> int:
    with database.read() as conn:
        return DocumentStore().count(conn, space, collection)


def test_formats(tmp_path: Path) -> None:
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"a": 1}\n\n{"a": "x\\n]"}\nnot json\n')
    parsed = list(records(jsonl))
    assert [n for n, _ in parsed] == [1, 3, 4]
    assert parsed[1][1] == {"a": "x\n]"}
    assert isinstance(parsed[2][1], TransferError)
    array = tmp_path / "b.json"
    array.write_text('[\n {"a": [1, {"b": "}"}]},\n {"c": null}\n]')
    assert [r for _, r in records(array)] == [{"a": [1, {"b": "}"}]}, {"c": None}]
    table = tmp_path / "c.csv"
    table.write_text("name,age,ok\nPolly,3,true\nRex,,false\n")
    assert [r for _, r in records(table)] == [
        {"name": "Polly", "age": 3, "ok": True},
        {"name": "Rex", "age": None, "ok": False},
    ]


def test_import_skip_and_abort(database: Database, space: str, tmp_path: Path) -> None:
    source = tmp_path / "pets.jsonl"
    source.write_text('{"_id": "p1", "name": "Polly"}\n[1]\n{"name": "Rex"}\n{"_id": "a/b"}\n')
    with pytest.raises(TransferError, match="line 2"):
        import_documents(database, space, "pets", source, schema=None)
    assert count(database, space) == 0  # abort checks everything before writing
    report = import_documents(database, space, "pets", source, schema=None, on_error="skip")
    assert (report.imported, report.skipped) == (2, 2)
    assert report.problems[0].startswith("line 2")
    out = io.BytesIO()
    assert export_documents(database, space, "pets", out, as_array=False) == 2
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0] == {"_id": "p1", "name": "Polly"}
    array = io.BytesIO()
    export_documents(database, space, "pets", array, as_array=True)
    assert len(json.loads(array.getvalue())) == 2


def test_cli_round_trip_with_schema(tmp_path: Path) -> None:
    env = {"DATASTORE_DATABASE_URL": f"sqlite:///{tmp_path / 't.sqlite3'}"}
    good = tmp_path / "events.json"
    rows = [
        {"_id": "e1", "name": "Gig", "eventDate": "2026-01-01T00:00:00Z"},
        {"_id": "e2", "name": "", "eventDate": "soon"},
    ]
    good.write_text("[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n")
    refused = run("import", "events", str(good), "--blueprint", "blueprints/events.yaml", env=env)
    assert refused.returncode == 1
    assert "line 3" in refused.stderr and "nothing written" in refused.stderr
    skipped = run(
        "import",
        "events",
        str(good),
        "--blueprint",
        "blueprints/events.yaml",
        "--on-error",
        "skip",
        env=env,
    )
    assert skipped.returncode == 0, skipped.stderr
    assert "imported 1 documents, skipped 1" in skipped.stdout
    exported = run("export", "events", env=env)
    assert json.loads(exported.stdout.splitlines()[0])["_id"] == "e1"
