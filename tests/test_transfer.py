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

pytestmark = pytest.mark.citus_audit

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


WIDE = "is an integer outside the 64-bit range (-9223372036854775808 to 9223372036854775807)"
BAD_ROWS = [
    (b'{"_id": "ok", "n": 1}', None),
    (b'{"s": "a\\u0000b"}', "body contains a NUL character (\\u0000)"),
    (b'{"k\\u0000": 1}', "body contains a NUL character (\\u0000)"),
    (b'{"n": 9223372036854775808}', f"n {WIDE}"),
    (b'{"n": -9223372036854775809, "m": [1, 18446744073709551616]}', f"m[1] {WIDE}; n {WIDE}"),
    (b'{"d": ' + b"[" * 70 + b"]" * 70 + b"}", "body may be nested at most 64 levels deep"),
    (b'{"n": 1e400}', "not valid JSON (number is infinity"),
    (b'{"s": "\xff"}', "not valid JSON (str is not valid UTF-8"),
    (b'{"_id": "ok2", "edge": 9223372036854775807, "low": -9223372036854775808}', None),
]


def _bad_file(tmp_path: Path, kind: str) -> Path:
    rows = [row for row, _ in BAD_ROWS]
    if kind == "jsonl":
        path = tmp_path / "rows.jsonl"
        path.write_bytes(b"\n".join(rows) + b"\n")
    else:  # an array, one record a line after the opening bracket's line
        path = tmp_path / "rows.json"
        path.write_bytes(b"[\n" + b",\n".join(rows) + b"\n]\n")
    return path


@pytest.mark.parametrize("kind", ["jsonl", "array"])
def test_records_get_the_checks_bodies_get(
    database: Database, space: str, tmp_path: Path, kind: str
) -> None:
    """Found in issue 15: a record with a NUL ended the import with a traceback (PostgreSQL's
    JSONB refuses it mid-batch), and integers past 64 bits were read as floats."""
    path = _bad_file(tmp_path, kind)
    first = 2 if kind == "jsonl" else 3
    with pytest.raises(TransferError, match=f"^line {first}: body contains a NUL"):
        import_documents(database, space, "pets", path, schema=None)
    assert count(database, space) == 0
    report = import_documents(database, space, "pets", path, schema=None, on_error="skip")
    assert (report.imported, report.skipped) == (2, len(BAD_ROWS) - 2)
    offset = 1 if kind == "jsonl" else 2
    expected = [
        (index + offset, reason) for index, (_, reason) in enumerate(BAD_ROWS) if reason is not None
    ]
    assert len(report.problems) == len(expected)
    for problem, (line, reason) in zip(report.problems, expected, strict=True):
        assert problem.startswith(f"line {line}: {reason}"), problem
    out = io.BytesIO()
    export_documents(database, space, "pets", out, as_array=False)
    exact = {"_id": "ok2", "edge": 2**63 - 1, "low": -(2**63)}
    assert json.loads(out.getvalue().splitlines()[1]) == exact


def test_csv_records_get_the_checks_bodies_get(
    database: Database, space: str, tmp_path: Path
) -> None:
    path = tmp_path / "rows.csv"
    path.write_bytes(
        b"name,n\n"
        b"ok,9223372036854775807\n"
        b"nul,a\x00b\n"
        b"wide,9223372036854775808\n"
        b"wider,-99999999999999999999\n"
        b"bytes,\xff\n"
        b"text,1e400\n"
        b"exact,1234567890123456789\n"
    )
    report = import_documents(database, space, "pets", path, schema=None, on_error="skip")
    assert report.problems == [
        "line 3: body contains a NUL character (\\u0000)",
        f"line 4: n {WIDE}",
        f"line 5: n {WIDE}",
        "line 6: not UTF-8 text",
    ]
    out = io.BytesIO()
    export_documents(database, space, "pets", out, as_array=False)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["name"], r["n"]) for r in rows] == [
        ("ok", 2**63 - 1),
        ("text", "1e400"),  # no number a document can hold: text, as in URL parameters
        ("exact", 1234567890123456789),  # not rounded through a float
    ]


def test_cli_import_of_bad_records_has_no_traceback(
    database: Database, database_url: str, space: str, tmp_path: Path
) -> None:
    path = _bad_file(tmp_path, "jsonl")
    env = {"DATASTORE_DATABASE_URL": database_url}
    aborted = run("import", "pets", str(path), "--space", space, env=env)
    assert aborted.returncode == 1
    assert "Traceback" not in aborted.stderr
    assert "line 2: body contains a NUL character" in aborted.stderr
    skipped = run("import", "pets", str(path), "--space", space, "--on-error", "skip", env=env)
    assert skipped.returncode == 0, skipped.stderr
    assert "Traceback" not in skipped.stderr
    assert "imported 2 documents, skipped 7" in skipped.stdout
    assert count(database, space) == 2
