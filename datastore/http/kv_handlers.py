"""Generic handlers of the key-value endpoints (``/keyv/{key}``, ``/_incr``, ``/_decr``,
``/keyv?prefix=``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from datastore.clock import format_datetime
from datastore.errors import BadRequest, InvalidParam, ValidationFailed
from datastore.http.endpoint import Call
from datastore.http.requests import read_json
from datastore.http.shaping import json_response, maybe_body, pick_status
from datastore.keyvalue.service import check_key, check_keyspace, parse_ttl


def _key(call: Call) -> tuple[str, str]:
    param = call.op.segments[1].param or "key"
    keyspace = check_keyspace(call.request.query_params.get("keyspace"))
    return keyspace, check_key(str(call.path_params[param]))


def _validated(call: Call, value: Any) -> Any:
    schema = call.endpoint.request_schema
    if schema is not None:
        problems = schema.errors(value)
        if problems:
            raise ValidationFailed(invalid_params=problems)
    return value


async def kv_get(call: Call) -> Response:
    """GET a value (404 when missing or expired)."""
    keyspace, key = _key(call)
    entry = await call.space.keyvalues.get(keyspace, key)
    status, _ = pick_status(call.op, [200])
    return json_response(entry.value, status)


async def kv_put(call: Call) -> Response:
    """PUT a value, with ``?ttl=<ms>``."""
    keyspace, key = _key(call)
    ttl = parse_ttl(call.request.query_params.get("ttl"))
    value = _validated(call, await read_json(call))
    entry = await call.space.keyvalues.set(keyspace, key, value, ttl)
    status, with_body = pick_status(call.op, [200])
    return maybe_body(entry.value, status, with_body)


async def kv_delete(call: Call) -> Response:
    """DELETE a key (404 when missing)."""
    keyspace, key = _key(call)
    await call.space.keyvalues.delete(keyspace, key)
    status, with_body = pick_status(call.op, [200, 204])
    return maybe_body({"key": key}, status, with_body)


def _amount(body: Any) -> int | float:
    if not isinstance(body, dict):
        raise ValidationFailed(invalid_params=[InvalidParam("body", "must be a JSON object")])
    amount = body.get("value", 1)
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise ValidationFailed(invalid_params=[InvalidParam("value", "must be a number")])
    return amount


async def _step(call: Call, sign: int) -> Response:
    keyspace, key = _key(call)
    amount = _amount(_validated(call, await read_json(call)))
    value = await call.space.keyvalues.increment(keyspace, key, sign * amount)
    status, _ = pick_status(call.op, [200])
    return json_response({"value": value}, status)


async def kv_incr(call: Call) -> Response:
    """PUT ``/_incr``: add ``{"value": n}`` atomically."""
    return await _step(call, 1)


async def kv_decr(call: Call) -> Response:
    """PUT ``/_decr``: subtract ``{"value": n}`` atomically."""
    return await _step(call, -1)


async def kv_list(call: Call) -> Response:
    """GET ``/keyv?prefix=``: live keys with their values and expiry, in key order."""
    params = call.request.query_params
    keyspace = check_keyspace(params.get("keyspace"))
    prefix = params.get("prefix", "")
    raw_limit = params.get("limit")
    limit = call.settings.default_limit
    if raw_limit is not None:
        if (
            not (raw_limit.isascii() and raw_limit.isdigit())
            or not 0 < int(raw_limit) <= call.settings.max_limit
        ):
            raise BadRequest(
                invalid_params=[
                    InvalidParam(
                        "limit", f"must be a whole number from 1 to {call.settings.max_limit}"
                    )
                ]
            )
        limit = int(raw_limit)
    entries = await call.space.keyvalues.list(keyspace, prefix, limit)
    return json_response(
        [
            {
                "key": e.key,
                "value": e.value,
                "expiresAt": format_datetime(e.expires_at) if e.expires_at else None,
            }
            for e in entries
        ]
    )
