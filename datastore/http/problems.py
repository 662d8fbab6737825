"""The only renderer of errors: every failure becomes ``application/problem+json``.

Datastore errors render as they are; connexion's and Starlette's own problems (parameter
validation, content type, 405) are mapped onto the same shape and titles; anything unexpected
is logged with its traceback and answered with a bare 500 that reveals nothing.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from datastore.errors import (
    BadRequest,
    DatastoreError,
    InternalError,
    InvalidParam,
    MethodNotAllowed,
    NotFound,
    UnsupportedMediaType,
)

logger = logging.getLogger("datastore.errors")
PROBLEM_JSON = "application/problem+json"


def problem_response(error: DatastoreError) -> Response:
    """The HTTP response for a datastore error."""
    return Response(
        orjson.dumps(error.problem()),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=error.headers,
    )


def from_connexion_problem(status: int, detail: str | None, title: str | None) -> DatastoreError:
    """Map a problem raised inside connexion's middleware to a datastore error."""
    if status == 405:
        return MethodNotAllowed()
    if status == 415:
        return UnsupportedMediaType(_media_type_detail(detail))
    if status == 404:
        return NotFound(detail or None)
    if status == 400:
        return BadRequest(detail or None, invalid_params=_params_from_detail(detail))
    error = DatastoreError(detail or None, title=title or "Error")
    error.status = status
    return error


def _media_type_detail(detail: str | None) -> str | None:
    """connexion says "Invalid Content-type (text/plain), expected ['application/json']" (a
    Python list); say it in words."""
    match = re.fullmatch(r"Invalid Content-type \((.*)\), expected \[(.*)\]", detail or "", re.S)
    if match is None:
        return detail or None
    expected = [t.strip().strip("'\"") for t in match[2].split(",") if t.strip()]
    given = f"Content-Type {match[1]}" if match[1] else "A body without a Content-Type"
    return f"{given} is not accepted here; send {' or '.join(expected)}."


def _params_from_detail(detail: str | None) -> list[InvalidParam]:
    """connexion says "'x' is not of type 'integer'\n\nFailed validating ... - 'query.limit'";
    recover the parameter name so the client sees which one was wrong."""
    if not detail:
        return []
    marker = detail.rfind(" - '")
    if marker == -1 or not detail.endswith("'"):
        return []
    where = detail[marker + 4 : -1]
    name = where.split(".", 1)[-1]
    message = detail[:marker].split("\n", 1)[0]
    return [InvalidParam(name, message)]


async def connexion_problem_handler(request: Any, exc: Exception) -> Any:
    """connexion error handler: its ProblemException / HTTPException in our shape."""
    from connexion.lifecycle import ConnexionResponse

    status = int(getattr(exc, "status", None) or getattr(exc, "status_code", None) or 500)
    detail = getattr(exc, "detail", None)
    title = getattr(exc, "title", None)
    error = from_connexion_problem(status, str(detail) if detail else None, title)
    error.headers.update(getattr(exc, "headers", None) or {})  # e.g. Allow on a 405
    if status >= 500:
        logger.error("server error in connexion middleware", exc_info=exc)
        error = InternalError()
    return ConnexionResponse(
        status_code=error.status,
        body=orjson.dumps(error.problem()),
        content_type=PROBLEM_JSON,
        headers=error.headers,
    )


async def datastore_error_handler(request: Any, exc: Exception) -> Any:
    """connexion error handler for datastore errors raised inside its middleware."""
    from connexion.lifecycle import ConnexionResponse

    assert isinstance(exc, DatastoreError)
    return ConnexionResponse(
        status_code=exc.status,
        body=orjson.dumps(exc.problem()),
        content_type=PROBLEM_JSON,
        headers=exc.headers,
    )


def unexpected_error(exc: BaseException) -> Response:
    """Log an unexpected exception and answer 500 without internals."""
    logger.error("unexpected error", exc_info=exc)
    return problem_response(InternalError())


async def starlette_http_exception(request: Request, exc: HTTPException) -> Response:
    """Starlette HTTPException → problem."""
    return problem_response(from_connexion_problem(exc.status_code, exc.detail, None))
