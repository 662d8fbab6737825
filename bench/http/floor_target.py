"""Serving the floor (bench/http/floor.py) and its request for each scenario."""

from __future__ import annotations

import json
import os
import random
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from bench.http import data
from bench.http.ours import ROOT, SPACE
from bench.http.servers import Server, free_port
from bench.http.wrk import Load
from datastore.query import ast
from datastore.storage.compiler import Compiler, document_columns

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def sort_expressions(field: str) -> list[str]:
    """The datastore's own ORDER BY expressions for an ascending sort on ``field``, as SQL text,
    so the floor's keyset query is the same SQL and uses the same index."""
    compiler = Compiler(document_columns(), "postgresql")
    return [
        str(column.compile(dialect=_DIALECT, compile_kwargs={"literal_binds": True})).replace(
            "documents.", ""
        )
        for column, _ in compiler.sort_columns(ast.SortKey(ast.Field((field,))))
    ]


def equality_expressions(field: str) -> dict[str, str]:
    """The datastore's two branches of equality on an ``x-datastore-indexes`` field as SQL
    text, for the floor's list filter: ``string`` (the indexed string view, compared with the
    value) and ``array`` (the field is an array; containment follows)."""
    compiler = Compiler(document_columns(), "postgresql")
    value = compiler.value(ast.Field((field,)))
    expressions = {
        "string": compiler.typed_views(value)["string"],
        "array": compiler.is_array(value),
    }
    return {
        name: str(
            expression.compile(dialect=_DIALECT, compile_kwargs={"literal_binds": True})
        ).replace("documents.", "")
        for name, expression in expressions.items()
    }


class Floor:
    name = "floor"

    def __init__(self, database_url: str, work: Path, workers: int, documents: int) -> None:
        self.database_url = database_url
        self.documents = documents
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.sort = sort_expressions("rank")
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "FLOOR_DATABASE_URL": database_url.replace("postgresql+psycopg://", "postgresql://"),
            "FLOOR_SORT": json.dumps(self.sort),
            "FLOOR_EQUAL": json.dumps({"category": equality_expressions("category")}),
        }
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        self.server = Server(
            self.name,
            [
                gunicorn,
                "-k",
                "uvicorn.workers.UvicornWorker",
                "-w",
                str(workers),
                "-b",
                f"127.0.0.1:{self.port}",
                "bench.http.floor:app",
            ],
            env=env,
            health_url=f"{self.base_url}/__health",
            log=work / "floor.log",
            cwd=ROOT,
        )

    def _page_start(self, page: int) -> list[Any]:
        """The keyset values of the last row before page ``page`` (20 rows a page)."""
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                row = conn.execute(
                    sa.text(
                        f"SELECT {', '.join(self.sort)}, pk FROM documents"
                        " WHERE space = :space AND collection = 'items'"
                        f" ORDER BY {', '.join([*self.sort, 'pk'])}"
                        " OFFSET :offset LIMIT 1"
                    ),
                    {"space": SPACE, "offset": (page - 1) * 20 - 1},
                ).one()
        finally:
            engine.dispose()
        # numeric values go back as integers (the seeded ranks are): a float parameter would
        # make PostgreSQL compare as double precision and skip the index.
        return [int(v) if not isinstance(v, (int, str, bool)) else v for v in row]

    def loads(self, rng: random.Random) -> dict[str, Load]:
        after = urllib.parse.quote(orjson.dumps(self._page_start(500)).decode())
        return {
            **data.shared_loads(rng, self.documents, {}),
            "page-500": Load("GET", [f"/items?limit=20&after={after}"]),
            "page-1": Load("GET", ["/items?limit=20"]),
        }
