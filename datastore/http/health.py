"""System routes outside the blueprint: ``GET /__health`` (liveness plus a database round
trip) and, under ``serve --dev`` only, ``POST /__jwt`` (signs the posted claims)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from datastore.auth.credentials import mint_token
from datastore.errors import BadRequest, InvalidParam, MethodNotAllowed
from datastore.http.requests import parse_json, read_body
from datastore.http.shaping import json_response
from datastore.storage.engine import Database
from datastore.storage.status import answers


def health_route(db: Database) -> Callable[[Request], Awaitable[Response]]:
    """The health endpoint for one database."""

    async def health(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed()
        await answers(db)
        return json_response({"status": "ok", "database": db.dialect})

    return health


def dev_token_route(secret: str) -> Callable[[Request], Awaitable[Response]]:
    """``POST /__jwt`` with a JSON object of claims → ``{"token": ...}`` signed with ``secret``
    (valid for an hour unless the claims set ``exp``). Development mode only."""

    async def mint(request: Request) -> Response:
        if request.method != "POST":
            raise MethodNotAllowed()
        raw = await read_body(request, 64 * 1024)
        claims = parse_json(raw, request.headers, 16) if raw.strip() else {}
        if not isinstance(claims, dict):
            raise BadRequest(invalid_params=[InvalidParam("body", "must be a JSON object")])
        expires = None if "exp" in claims else timedelta(hours=1)
        return json_response({"token": mint_token(claims, secret=secret, expires_in=expires)})

    return mint
