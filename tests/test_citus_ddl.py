"""The Citus DDL of docs/deploy.md, applied to plain PostgreSQL without the Citus functions:
the constraints it changes (every unique key holding ``space``, lineage rows tied to their
documents by (space, pk)) must keep every operation working as before."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datastore.keyvalue.service import KeyValueService
from datastore.queue.service import QueueService
from datastore.storage import migrate
from datastore.storage.engine import Database
from datastore.worker import Worker
from tests.http.test_documents import EVENT
from tests.support.client import serve

DEPLOY = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"


def citus_ddl() -> str:
    """The SQL block after ``<!-- citus-ddl -->`` in docs/deploy.md."""
    found = re.search(r"<!-- citus-ddl -->\s*```sql\n(.*?)```", DEPLOY.read_text(), re.S)
    assert found is not None, "docs/deploy.md lost its Citus DDL block"
    return found.group(1)


def without_citus(ddl: str) -> list[str]:
    """The statements of ``ddl`` but the Citus functions and comments."""
    lines = [line for line in ddl.splitlines() if not line.lstrip().startswith("--")]
    statements = [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
    return [
        s
        for s in statements
        if "create_distributed_table" not in s and "create_reference_table" not in s
    ]


@pytest.fixture
def citus_shaped(fresh_postgres_url: str) -> Iterator[Database]:
    db = Database(fresh_postgres_url)
    migrate.upgrade(db)
    with db.write() as conn:
        for statement in without_citus(citus_ddl()):
            conn.exec_driver_sql(statement)
    yield db
    db.dispose()


def test_the_ddl_distributes_the_four_tables_by_space() -> None:
    ddl = citus_ddl()
    for table in ("documents", "document_lineage", "keyvalues", "jobs"):
        colocated = "" if table == "documents" else ", colocate_with => 'documents'"
        assert f"create_distributed_table('{table}', 'space'{colocated})" in ddl


def test_documents_inheritance_keys_and_jobs_work_on_the_citus_shape(
    citus_shaped: Database, space: str
) -> None:
    with serve(citus_shaped, space, "events.yaml") as events:
        assert events.put("/events/base", json={**EVENT, "cost": 3}).status_code == 201
        child: Any = events.put("/events/child", json={"extends": "/events/base"})
        assert child.status_code == 201 and child.json()["cost"] == 3
        assert events.patch("/events/child", json={"extends": None, **EVENT}).status_code == 200
        assert events.put("/events/child", json={"extends": "/events/base"}).status_code == 200
        assert events.delete("/events/base").status_code == 409  # extended by child
        assert events.delete("/events/base", params={"detach": "true"}).status_code == 204
        assert events.get("/events/child").json()["cost"] == 3
    keys = KeyValueService(citus_shaped, space)
    assert asyncio.run(keys.increment("k", "hits", 2)) == 2
    queue = QueueService(citus_shaped, space)
    job = asyncio.run(queue.enqueue("t", {"n": 1}))
    done: list[Any] = []
    worker = Worker(citus_shaped, space, {"t": lambda j: done.append(j.payload)})
    assert worker.run_once() is not None
    assert done == [{"n": 1}] and asyncio.run(queue.get("t", job.id)).status == "done"
