"""The floor: a bare Starlette + psycopg app doing the same SQL as the datastore's scenarios,
with no validation, no authentication and nothing else — what Python on this machine can do
at best. Served by gunicorn with uvicorn workers like the datastore:

    FLOOR_DATABASE_URL=postgresql://postgres@127.0.0.1/db FLOOR_SORT='["expr", ...]' \
    gunicorn -k uvicorn.workers.UvicornWorker bench.http.floor:app

It reads and writes the datastore's own ``documents`` table (space ``default``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SPACE = "default"
COLUMNS = "doc_id, body, created_at, updated_at, version"
pool = AsyncConnectionPool(
    os.environ.get("FLOOR_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres"),
    min_size=int(os.environ.get("FLOOR_POOL_SIZE", "10")),
    max_size=int(os.environ.get("FLOOR_POOL_SIZE", "10")),
    # The planner setting of the datastore's listing connections (storage/engine.py).
    kwargs={"options": "-c plan_cache_mode=force_generic_plan"},
    open=False,
)
SORT: list[str] = orjson.loads(os.environ.get("FLOOR_SORT", '["pk"]'))
EQUAL: dict[str, dict[str, str]] = orjson.loads(os.environ.get("FLOOR_EQUAL", "{}"))
"""The datastore's SQL expressions of equality's two branches on each indexed field."""
ORDER = ", ".join([*SORT, "pk"])


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status, media_type="application/json")


def _document(row: tuple[Any, ...]) -> dict[str, Any]:
    doc_id, body, created, updated, version = row
    return {
        **body,
        "_id": doc_id,
        "_created": created.isoformat(),
        "_updated": updated.isoformat(),
        "_version": version,
    }


async def get_one(request: Request) -> Response:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            f"SELECT {COLUMNS} FROM documents WHERE space = %s AND collection = %s AND doc_id = %s",
            (SPACE, request.path_params["collection"], request.path_params["id"]),
        )
        row = await cursor.fetchone()
    return _json(_document(row)) if row else _json({"title": "not found"}, 404)


async def create(request: Request) -> Response:
    body = orjson.loads(await request.body())
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "INSERT INTO documents (space, collection, doc_id, body, created_at, updated_at,"
            f" version) VALUES (%s, %s, %s, %s, now(), now(), 1) RETURNING {COLUMNS}",
            (SPACE, request.path_params["collection"], uuid.uuid4().hex, Jsonb(body)),
        )
        row = await cursor.fetchone()
    assert row is not None
    return _json(_document(row), 201)


async def increment(request: Request) -> Response:
    changes = orjson.loads(await request.body())["$inc"]
    (field, amount), *_ = changes.items()
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "UPDATE documents SET body = jsonb_set(body, ARRAY[%s],"
            " to_jsonb(COALESCE((body ->> %s)::numeric, 0) + %s)),"
            " version = version + 1, updated_at = now()"
            f" WHERE space = %s AND collection = %s AND doc_id = %s RETURNING {COLUMNS}",
            (
                field,
                field,
                amount,
                SPACE,
                request.path_params["collection"],
                request.path_params["id"],
            ),
        )
        row = await cursor.fetchone()
    return _json(_document(row)) if row else _json({"title": "not found"}, 404)


async def listing(request: Request) -> Response:
    # As the datastore does: the collection written into the SQL (its indexes are partial
    # indexes of the collection, which a generic plan uses only if it knows the name).
    collection = "'" + request.path_params["collection"].replace("'", "''") + "'"
    scope = f"space = %s AND collection = {collection}"
    limit = int(request.query_params.get("limit", "20"))
    after = request.query_params.get("after")
    async with pool.connection() as conn:
        if after is not None:
            values = orjson.loads(after)
            marks = ", ".join(["%s"] * len(values))
            cursor = await conn.execute(
                f"SELECT {COLUMNS} FROM documents WHERE {scope}"
                f" AND ({ORDER}) > ({marks}) ORDER BY {ORDER} LIMIT %s",
                (SPACE, *values, limit),
            )
        elif "q" in request.query_params:
            # One-field equality as the datastore runs it: the indexed string expression of
            # the field, or an array holding the value, one ordered SELECT each, merged.
            ((field, value),) = orjson.loads(request.query_params["q"]).items()
            branch = (
                f"SELECT pk, {COLUMNS} FROM documents WHERE {scope} AND {{}} ORDER BY pk LIMIT %s"
            )
            string, array = EQUAL[field]["string"], EQUAL[field]["array"]
            cursor = await conn.execute(
                f"SELECT {COLUMNS} FROM (({branch.format(f'({string}) = %s')}) UNION ALL"
                f" ({branch.format(f'{array} AND body @> %s')})) AS u ORDER BY pk LIMIT %s",
                (
                    *(SPACE, value, limit),
                    *(SPACE, Jsonb({field: [value]}), limit),
                    limit,
                ),
            )
        else:
            cursor = await conn.execute(
                f"SELECT {COLUMNS} FROM documents WHERE {scope} ORDER BY {ORDER} LIMIT %s",
                (SPACE, limit),
            )
        rows = await cursor.fetchall()
    return _json([_document(row) for row in rows])


async def health(request: Request) -> Response:
    return _json({"status": "ok"})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await pool.open()
    yield
    await pool.close()


app = Starlette(
    routes=[
        Route("/__health", health),
        Route("/{collection}", listing, methods=["GET"]),
        Route("/{collection}", create, methods=["POST"]),
        Route("/{collection}/{id}", get_one, methods=["GET"]),
        Route("/{collection}/{id}", increment, methods=["PATCH"]),
    ],
    lifespan=lifespan,
)
