"""``GET /__health``: liveness plus a database round trip."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import sqlalchemy.exc
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from datastore.errors import MethodNotAllowed, ServiceUnavailable
from datastore.http.shaping import json_response
from datastore.storage.engine import Database


def health_route(db: Database) -> Callable[[Request], Awaitable[Response]]:
    """The health endpoint for one database."""

    def ping() -> None:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    async def health(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed()
        try:
            await run_in_threadpool(ping)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise ServiceUnavailable("The database is unreachable.") from exc
        return json_response({"status": "ok", "database": db.dialect})

    return health
