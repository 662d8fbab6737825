"""The Citus audit itself (``tests/support/citus_audit.py``): what it accepts and refuses, that
it hears both drivers, and that its exceptions are the ones docs/deploy.md lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from datastore.storage.engine import Database
from tests.http.test_documents import EVENT
from tests.support import citus_audit as audit
from tests.support.client import serve

DEPLOY = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT documents.pk FROM documents WHERE documents.space = %(s)s AND documents.pk = 1",
        "SELECT d.pk FROM documents AS d WHERE (d.space IN (%(a)s, %(b)s))",
        "INSERT INTO jobs (id, space, topic) VALUES (%(i)s, %(s)s, %(t)s)",
        "UPDATE jobs SET status = 'done' WHERE jobs.space = %(s)s AND jobs.id = %(i)s",
        "DELETE FROM keyvalues WHERE keyvalues.space = %(s)s AND keyvalues.key = %(k)s",
        "SELECT l.depth FROM document_lineage AS l JOIN documents AS a ON a.pk = l.ancestor_pk"
        " AND a.space = l.space WHERE l.space = %(s)s",
        "SELECT d.pk FROM documents AS d WHERE d.space = %(s)s AND EXISTS (SELECT 1 FROM"
        " document_lineage AS l WHERE l.descendant_pk = d.pk AND l.space = d.space)",
        "CREATE INDEX ix ON documents (collection)",
        "SELECT 1 FROM api_keys WHERE key_hash = %(h)s",
    ],
)
def test_statements_routed_by_space_pass(sql: str) -> None:
    assert audit.violations(sql) == []


@pytest.mark.parametrize(
    ("sql", "table"),
    [
        ("SELECT documents.pk FROM documents WHERE documents.pk = 1", "documents"),
        ("UPDATE jobs SET status = 'done' WHERE jobs.id = %(i)s", "jobs"),
        ("DELETE FROM keyvalues WHERE keyvalues.expires_at <= now()", "keyvalues"),
        ("INSERT INTO document_lineage (ancestor_pk, descendant_pk) VALUES (1, 2)", "lineage"),
        # A space compared only under OR does not pin one shard.
        ("SELECT 1 FROM documents WHERE documents.space = 'a' OR documents.pk = 1", "documents"),
        # The inner level's space does not pin the outer reference.
        (
            "SELECT d.pk FROM documents AS d WHERE EXISTS (SELECT 1 FROM documents AS e"
            " WHERE e.space = %(s)s AND e.pk = d.pk)",
            "documents",
        ),
        (
            "SELECT l.depth FROM document_lineage AS l JOIN documents AS a ON a.pk ="
            " l.ancestor_pk WHERE l.space = %(s)s",
            "documents",
        ),
    ],
)
def test_statements_spanning_spaces_fail(sql: str, table: str) -> None:
    found = audit.violations(sql)
    assert found and table in " ".join(found), found


def test_it_hears_the_engine_and_the_async_driver(database: Database, space: str) -> None:
    if not database.is_postgresql:
        pytest.skip("the audit is of PostgreSQL's statements")
    with (
        serve(database, space, "events.yaml") as events,
        audit.recording(database.engine) as statements,
    ):
        assert events.put("/events/e1", json=EVENT).status_code == 201
        assert events.get("/events/e1").status_code == 200
        assert events.get("/events").status_code == 200
    origins = {frames[0] for frames in statements.values()}
    assert any(o.startswith("datastore/storage/async_store.py") for o in origins), origins
    assert any(o.startswith("datastore/storage/documents.py") for o in origins), origins


def test_the_exceptions_are_the_documented_ones() -> None:
    text = DEPLOY.read_text()
    for function in audit.EXCEPTIONS:
        assert f"`{function.removeprefix('datastore/')}`" in text, function
