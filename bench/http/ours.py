"""The datastore under test: its blueprint, its seed, its server (deploy/gunicorn.conf.py) and
the request of each scenario."""

from __future__ import annotations

import json
import os
import random
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.http import data
from bench.http.servers import Server, free_port
from bench.http.wrk import Load
from datastore.auth.credentials import mint_token
from datastore.storage import migrate
from datastore.storage.engine import Database
from datastore.storage.indexes import ensure_indexes, index_specs

ROOT = Path(__file__).resolve().parents[2]
SPACE = "default"
JWT_SECRET = "bench-secret-bench-secret-bench-secret"


def _ok(schema: Any = None, code: str = "200") -> dict[str, Any]:
    content = {"application/json": {"schema": schema}} if schema is not None else None
    return {code: {"description": "OK", **({"content": content} if content else {})}}


def _id_param(name: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}]


BLUEPRINT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "HTTP benchmark", "version": "1"},
    "paths": {
        "/items": {
            "x-datastore-indexes": ["category", "rank"],
            "get": {
                "x-datastore-acl": "public",
                "responses": _ok({"type": "array", "items": data.ITEM_SCHEMA}),
            },
            "post": {
                "x-datastore-acl": "public",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": data.ITEM_SCHEMA}},
                },
                "responses": _ok(data.ITEM_SCHEMA, "201"),
            },
        },
        "/items/{id}": {
            "parameters": _id_param("id"),
            "get": {"x-datastore-acl": "public", "responses": _ok(data.ITEM_SCHEMA)},
            "patch": {
                "x-datastore-acl": "public",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": _ok(data.ITEM_SCHEMA),
            },
        },
        **{
            f"/items{size}": {
                "x-datastore-indexes": ["category"],
                "get": {"x-datastore-acl": "public", "responses": _ok()},
            }
            for size in ("10k", "100k")
        },
        "/notes": {
            "get": {
                "x-datastore-acl": "jwt.sub === document.owner",
                "responses": _ok({"type": "array", "items": data.ITEM_SCHEMA}),
            },
        },
        "/notes/{id}": {
            "parameters": _id_param("id"),
            "get": {
                "x-datastore-acl": "jwt.sub === document.owner",
                "responses": _ok(data.ITEM_SCHEMA),
            },
        },
    },
}


def seed(database_url: str, documents: int) -> None:
    """Migrate, load ``documents`` items and the notes, create the declared indexes."""
    db = Database(database_url)
    try:
        migrate.upgrade(db)
        with db.engine.begin() as conn:
            for collection, count in (
                ("items", documents),
                ("notes", data.NOTES),
                ("items10k", 10_000),
                ("items100k", 100_000),
            ):
                conn.exec_driver_sql(
                    "INSERT INTO documents (space, collection, doc_id, body, created_at,"
                    " updated_at, version) SELECT %(space)s, %(collection)s,"
                    f" {data.doc_id_sql('n')}, {data.item_sql('n')}, now(), now(), 1"
                    " FROM generate_series(1, %(count)s) AS n",
                    {"space": SPACE, "collection": collection, "count": count},
                )
        ensure_indexes(db, index_specs(BLUEPRINT))
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE documents"
            )
    finally:
        db.dispose()


def count_documents(database_url: str) -> int:
    db = Database(database_url)
    try:
        with db.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM documents")).scalar_one())
    finally:
        db.dispose()


class Ours:
    """The datastore served by gunicorn with uvicorn workers, as deploy/ configures it."""

    name = "datastore"

    def __init__(
        self,
        database_url: str,
        work: Path,
        workers: int,
        documents: int,
        *,
        name: str = "datastore",
        pooler: str = "",
        read_database: str = "",
    ) -> None:
        self.name = name
        self.documents = documents
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        blueprint = work / "bench-blueprint.json"
        blueprint.write_text(json.dumps(BLUEPRINT))
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATASTORE_BLUEPRINT": str(blueprint),
            "DATASTORE_DATABASE_URL": database_url,
            "DATASTORE_DATABASE_POOLER": pooler,
            "DATASTORE_READ_DATABASE": read_database,
            "DATASTORE_BIND": f"127.0.0.1:{self.port}",
            "DATASTORE_WORKERS": str(workers),
            "DATASTORE_MIGRATE": "false",
            "DATASTORE_JWT_SECRET": JWT_SECRET,
            "DATASTORE_LOG_LEVEL": "warning",
        }
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        self.server = Server(
            self.name,
            [gunicorn, "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
            env=env,
            health_url=f"{self.base_url}/__health",
            log=work / f"{name}.log",
            cwd=ROOT,
        )

    def loads(self, rng: random.Random) -> dict[str, Load]:
        """The request of every scenario."""
        token = mint_token({"sub": data.JWT_USER}, secret=JWT_SECRET)
        first_page = "/items?page%5Bsize%5D=20&sort=%2Bdocument.rank"
        return {
            **data.shared_loads(rng, self.documents, {"Authorization": f"Bearer {token}"}),
            "page-500": Load("GET", [self.deep_page(first_page, 500)]),
            "page-1": Load("GET", [first_page]),
            **{
                f"list-eq-{size}": Load("GET", data.list_paths(f"items{size}"))
                for size in ("10k", "100k")
            },
        }

    def deep_page(self, first: str, page: int) -> str:
        """The URL of page ``page``, reached by following ``links.next`` from ``first``."""
        url = first
        for _ in range(page - 1):
            with urllib.request.urlopen(self.base_url + url, timeout=30) as response:
                url = json.load(response)["links"]["next"]
        return url
