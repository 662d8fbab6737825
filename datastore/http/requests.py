"""Reading requests: the body (size-limited, JSON, storable: ``jsonvalues.check_storable``) and
conditional headers."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.requests import Request

from datastore.documents.service import Preconditions
from datastore.errors import BadRequest, InvalidParam, PayloadTooLarge, UnsupportedMediaType
from datastore.http.endpoint import Call
from datastore.jsonvalues import check_storable

_NO_BODY = object()


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body; raises PayloadTooLarge as soon as it passes ``max_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > max_bytes:
                raise PayloadTooLarge(f"The body may be at most {max_bytes} bytes.")
        except ValueError:
            raise BadRequest("The Content-Length header is not a number.") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"The body may be at most {max_bytes} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _is_json_media_type(content_type: str | None) -> bool:
    if not content_type:
        return True  # curl -d without -H: be lenient, the body must still parse as JSON
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def parse_json(raw: bytes, headers: Headers, max_depth: int) -> Any:
    """The JSON value of a body; raises UnsupportedMediaType, BadRequest (malformed, too deep)."""
    if not _is_json_media_type(headers.get("content-type")):
        raise UnsupportedMediaType("The body must be JSON (Content-Type: application/json).")
    if not raw.strip():
        raise BadRequest(
            "The request body is empty; a JSON document is required.",
            invalid_params=[InvalidParam("body", "is required")],
        )
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            "The body is not valid JSON.",
            invalid_params=[InvalidParam("body", _json_error_reason(exc))],
        ) from None
    check_storable(value, max_depth, raw)
    return value


def _json_error_reason(exc: orjson.JSONDecodeError) -> str:
    message = str(exc.msg) if hasattr(exc, "msg") else str(exc)
    if "recursion" in message.lower():
        return "is nested too deeply"
    line = getattr(exc, "lineno", None)
    column = getattr(exc, "colno", None)
    where = f" at line {line}, column {column}" if line and column else ""
    return f"is not valid JSON{where}: {message}"


def _etag_list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def preconditions(headers: Headers) -> Preconditions:
    """``If-Match`` and ``If-None-Match: *`` of a write request."""
    if_match = headers.get("if-match")
    if_none_match = headers.get("if-none-match")
    none_match_any = False
    if if_none_match is not None:
        if if_none_match.strip() != "*":
            raise BadRequest(
                "Writes accept only If-None-Match: * (create only).",
                invalid_params=[InvalidParam("If-None-Match", "must be *")],
            )
        none_match_any = True
    return Preconditions(
        if_match=_etag_list(if_match) if if_match is not None else None,
        if_none_match_any=none_match_any,
    )


def not_modified(headers: Headers, current_etag: str) -> bool:
    """Whether a GET's ``If-None-Match`` names the current ETag (answer 304)."""
    value = headers.get("if-none-match")
    if value is None:
        return False
    tags = _etag_list(value)
    return "*" in tags or current_etag in tags or f"W/{current_etag}" in tags


async def read_json(call: Call) -> Any:
    """The parsed JSON body of the request."""
    raw = await read_body(call.request, call.settings.max_body_bytes)
    return parse_json(raw, call.request.headers, call.settings.max_json_depth)
