"""Start-up cost of a large blueprint: 50 collections, each with a schema and all five
operations, served by gunicorn with one worker; time until the first answer, and the worker's
memory then."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from bench.common import fresh_database
from bench.http import data
from bench.http.ours import ROOT
from bench.http.servers import Server, free_port, rss_mb
from datastore.storage import migrate
from datastore.storage.engine import Database
from datastore.storage.indexes import ensure_indexes, index_specs

COLLECTIONS = 50


def blueprint(collections: int = COLLECTIONS) -> dict[str, Any]:
    """A blueprint of ``collections`` collections, each with its own copy of the item schema."""
    ok = {"200": {"description": "OK"}}
    body = {"required": True, "content": {"application/json": {"schema": data.ITEM_SCHEMA}}}
    paths: dict[str, Any] = {}
    for n in range(collections):
        paths[f"/c{n}"] = {
            "x-datastore-indexes": ["category"],
            "get": {"x-datastore-acl": "public", "responses": ok},
            "post": {"x-datastore-acl": "jwt.sub !== null", "requestBody": body, "responses": ok},
        }
        paths[f"/c{n}/{{id}}"] = {
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "get": {"x-datastore-acl": "public", "responses": ok},
            "put": {
                "x-datastore-acl": "jwt.sub === document.owner",
                "requestBody": body,
                "responses": ok,
            },
            "patch": {
                "x-datastore-acl": "jwt.sub === document.owner",
                "requestBody": body,
                "responses": ok,
            },
            "delete": {"x-datastore-acl": "jwt.sub === document.owner", "responses": ok},
        }
    return {"openapi": "3.0.3", "info": {"title": "50 collections", "version": "1"}, "paths": paths}


def measure(admin_url: str, work: Path) -> dict[str, float]:
    """Seconds from starting gunicorn (one worker) to its first answer, and that worker's RSS
    in MB, on a fresh database migrated beforehand, its indexes included (as deploy/
    prescribes: ``datastore migrate --blueprint``)."""
    with fresh_database(admin_url, "bench_startup") as database_url:
        db = Database(database_url)
        try:
            migrate.upgrade(db)
            ensure_indexes(db, index_specs(blueprint()))
        finally:
            db.dispose()
        return _serve(database_url, work)


def _serve(database_url: str, work: Path) -> dict[str, float]:
    path = work / "fifty.json"
    path.write_text(json.dumps(blueprint()))
    port = free_port()
    server = Server(
        "fifty",
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "-c",
            str(ROOT / "deploy" / "gunicorn.conf.py"),
        ],
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATASTORE_BLUEPRINT": str(path),
            "DATASTORE_DATABASE_URL": database_url,
            "DATASTORE_BIND": f"127.0.0.1:{port}",
            "DATASTORE_WORKERS": "1",
            "DATASTORE_MIGRATE": "false",
            "DATASTORE_LOG_LEVEL": "warning",
        },
        health_url=f"http://127.0.0.1:{port}/c0?limit=1",
        log=work / "fifty.log",
        cwd=ROOT,
    )
    server.start()
    try:
        rss = max((rss_mb(pid) for pid in server.workers()), default=0.0)
        return {"seconds": server.started_in, "rss_mb": rss}
    finally:
        server.stop()
