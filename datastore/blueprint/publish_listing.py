"""What the published document says about listings: the query parameters a collection GET,
``_count`` and ``_byquery`` accept, and every shape a listing can answer with.

Parameters (``http/listing.py``, ``query/mongo.py``, ``query/squiz.py``), added where the
blueprint does not declare them itself:

- collection GET: ``q`` and ``h`` (JSON, published as ``content: application/json``
  parameters), ``filters``, ``sort``, ``fields``, ``omit``, ``limit`` / ``offset`` (bounded),
  ``page[size]`` (bounded), ``page[after]`` / ``page[before]`` (opaque cursors from ``links``)
  and ``page[v]``;
- ``_count`` GET and ``_byquery`` PATCH / DELETE: ``q``, ``h`` and ``filters``;
- ``_changes`` GET: ``q`` and ``filters``, ``since`` (a cursor), ``wait`` and ``limit``
  (bounded), and the ``Last-Event-ID`` header of a reconnecting event stream.

A ``q`` or ``h`` the blueprint declares as a plain string (the Codehooks seed does) is published
as the JSON it must be, keeping the author's description. What JSON Schema cannot say about
these (the grammar of ``filters`` and ``sort``, the operators ``q`` accepts, where a cursor came
from) is listed in docs/blueprints.md.

Answers: a collection GET answers the declared array, or, with ``fields`` / ``omit`` /
``h.fields``, that array's documents projected (any subset of their properties), or with
``page[...]`` the ``{"data", "links"}`` page object, or with ``h={"$onlycount": true}``
``[{"count": n}]``; the published 200 schema is the ``anyOf`` of these, the declared one first.
"""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

from datastore.blueprint.model import Kind, Operation, follow_refs
from datastore.types import INT64_MAX

JSON_MEDIA = "application/json"


def _int(minimum: int, maximum: int) -> dict[str, Any]:
    return {"type": "integer", "format": "int64", "minimum": minimum, "maximum": maximum}


def _hints_schema(max_limit: int) -> dict[str, Any]:
    projection = {
        "description": 'Fields to include ({"a": 1}) or exclude ({"a": 0}), or a list',
        "anyOf": [
            {"type": "object"},
            {"type": "array", "items": {"type": "string"}},
            {"type": "string"},
        ],
    }
    sort = {
        "description": 'Sort keys: {"a": 1, "b": -1}, or "-a,b"',
        "anyOf": [
            {"type": "object", "additionalProperties": {"enum": [1, -1, "asc", "desc"]}},
            {"type": "string"},
        ],
    }
    digits = {"type": "string", "pattern": "^\\s*[0-9]+\\s*$"}
    offset = {"anyOf": [_int(0, INT64_MAX), digits]}
    limit = {"anyOf": [_int(0, max_limit), digits]}
    count = {"description": "Truthy: answer [{count: n}] instead of documents"}
    names = {
        "fields": projection,
        "$fields": projection,
        "projection": projection,
        "sort": sort,
        "$sort": sort,
        "skip": offset,
        "$skip": offset,
        "offset": offset,
        "$offset": offset,
        "limit": limit,
        "$limit": limit,
        "$onlycount": count,
        "$count": count,
        "count": count,
    }
    return {
        "type": "object",
        "description": "Query hints (Codehooks): projection, sort, window, count only.",
        "properties": names,
        "additionalProperties": False,
    }


def _query_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            "A Mongo-like query: field equality, dot paths, $gt $gte $lt $lte $ne $eq $in "
            "$nin $exists $regex ($options) $not $and $or $nor $elemMatch $all $size "
            '$startsWith $endsWith, {"$date": "..."} values.'
        ),
    }


def _json_parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "content": {JSON_MEDIA: {"schema": schema}},
    }


def _string(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": "string", **schema},
    }


CURSOR_PATTERN = "^[0-9]{1,18}$"


def _changes_parameters(
    selectors: list[dict[str, Any]], max_limit: int, max_wait: int
) -> list[dict[str, Any]]:
    """A change feed's parameters: ``q``, ``filters``, the cursor, the wait, the page size."""
    return [
        selectors[0],
        selectors[2],
        _string(
            "since",
            "Follow from this cursor (an event id or a next value).",
            pattern=CURSOR_PATTERN,
        ),
        {
            "name": "wait",
            "in": "query",
            "description": "JSON: wait up to this many seconds for a first change.",
            "schema": _int(0, max_wait),
        },
        {
            "name": "limit",
            "in": "query",
            "description": "JSON: at most this many changes.",
            "schema": _int(1, max_limit),
        },
        {
            "name": "Last-Event-ID",
            "in": "header",
            "description": "The last event id a reconnecting stream received (wins over since).",
            "schema": {"type": "string", "pattern": CURSOR_PATTERN},
        },
    ]


def _query_parameters(op: Operation, max_limit: int, max_wait: int = 30) -> list[dict[str, Any]]:
    """The query parameters ``op`` accepts, as the datastore publishes them."""
    selectors = [
        _json_parameter("q", _query_schema(), "Codehooks query (JSON)."),
        _json_parameter("h", _hints_schema(max_limit), "Codehooks query hints (JSON)."),
        _string(
            "filters",
            "Squiz filters: document.<path><op><value> with === !== > < >= <= <@ @>; "
            "';' is AND, ',' is OR, parentheses group.",
        ),
    ]
    if op.kind is Kind.CHANGES:
        return _changes_parameters(selectors, max_limit, max_wait)
    if not (op.kind is Kind.COLLECTION and op.method == "get"):
        return selectors
    return [
        *selectors,
        _string(
            "sort",
            "Sort keys, comma-separated: -a,b (Codehooks) or +document.a,-document.b (Squiz).",
        ),
        _string("fields", "Only these fields, comma-separated (a projection)."),
        _string("omit", "All but these fields, comma-separated."),
        {
            "name": "limit",
            "in": "query",
            "description": "At most this many documents.",
            "schema": _int(0, max_limit),
        },
        {
            "name": "offset",
            "in": "query",
            "description": "Skip this many documents.",
            "schema": _int(0, INT64_MAX),
        },
        {
            "name": "page[size]",
            "in": "query",
            "description": 'Keyset paging: the answer becomes {"data": [...], "links"}.',
            "schema": _int(1, max_limit),
        },
        _string("page[after]", "The cursor of links.next (opaque)."),
        _string("page[before]", "The cursor of links.prev (opaque)."),
        _string("page[v]", "The paging version (both page by keyset).", enum=["1", "2"]),
    ]


def _key(document: dict[str, Any], raw: Any) -> tuple[str, str] | None:
    param = follow_refs(document, raw)
    if isinstance(param, dict) and "name" in param and "in" in param:
        return str(param["in"]), str(param["name"])
    return None


def _as_json_parameter(document: dict[str, Any], raw: Any, published: dict[str, Any]) -> Any:
    """An author's ``q`` / ``h`` declared as a plain string, published as the JSON it is."""
    param = follow_refs(document, raw)
    if not isinstance(param, dict) or "content" in param:
        return raw
    schema = follow_refs(document, param.get("schema"))
    if not isinstance(schema, dict) or schema.get("type", "string") != "string":
        return raw
    if any(k in schema for k in ("enum", "const", "pattern", "format")):
        return raw
    out = {k: copy.deepcopy(v) for k, v in param.items() if k not in ("schema", "example")}
    out.pop("style", None)
    out.pop("explode", None)
    media: dict[str, Any] = {"schema": copy.deepcopy(published["content"][JSON_MEDIA]["schema"])}
    example = param.get("example", schema.get("example"))
    if isinstance(example, str):
        with contextlib.suppress(ValueError):
            media["example"] = json.loads(example)
    out["content"] = {JSON_MEDIA: media}
    return out


def add_query_parameters(
    document: dict[str, Any],
    item: dict[str, Any],
    spec: dict[str, Any],
    op: Operation,
    *,
    max_limit: int,
    max_wait: int = 30,
) -> None:
    """Publish the query parameters of a listing, ``_count``, ``_byquery`` or ``_changes``
    operation."""
    listing = op.kind is Kind.COLLECTION and op.method == "get"
    selecting = (op.kind in (Kind.COUNT, Kind.CHANGES) and op.method == "get") or (
        op.kind is Kind.BYQUERY and op.method in ("patch", "delete")
    )
    if not (listing or selecting):
        return
    wanted = _query_parameters(op, max_limit, max_wait)
    by_name = {(str(p["in"]), str(p["name"])): p for p in wanted}
    own = spec.setdefault("parameters", [])
    # An author's q / h on the path item is copied into the operation to be restated.
    own_keys = {_key(document, p) for p in own}
    for raw in item.get("parameters", []):
        found = _key(document, raw)
        if found in (("query", "q"), ("query", "h")) and found not in own_keys:
            own.append(copy.deepcopy(follow_refs(document, raw)))
            own_keys.add(found)
    for index, raw in enumerate(own):
        found = _key(document, raw)
        if found in (("query", "q"), ("query", "h")):
            own[index] = _as_json_parameter(document, raw, by_name[found])
    declared = own_keys | {_key(document, p) for p in item.get("parameters", [])}
    own.extend(copy.deepcopy(p) for key, p in by_name.items() if key not in declared)


def widen_listing_answer(document: dict[str, Any], spec: dict[str, Any], op: Operation) -> None:
    """A collection GET's declared JSON 200 answer, widened to every shape it can take."""
    if not (op.kind is Kind.COLLECTION and op.method == "get"):
        return
    response = follow_refs(document, (spec.get("responses") or {}).get("200"))
    media = (response or {}).get("content", {}).get(JSON_MEDIA) if response else None
    if not isinstance(media, dict) or not isinstance(media.get("schema"), dict):
        return
    declared = media["schema"]
    array = follow_refs(document, declared)
    if not isinstance(array, dict) or array.get("type") != "array":
        return
    projected = {
        "type": "array",
        "description": "With fields / omit / h.fields: each document projected",
        "items": _projection_of(document, array.get("items", {})),
    }
    page = {
        "type": "object",
        "description": "With page[...] parameters: one page and the links to its neighbours",
        "required": ["data", "links"],
        "properties": {
            "data": {"anyOf": [copy.deepcopy(declared), copy.deepcopy(projected)]},
            "links": {
                "type": "object",
                "required": ["prev", "next"],
                "properties": {
                    "prev": {"type": ["string", "null"]},
                    "next": {"type": ["string", "null"]},
                },
            },
        },
    }
    count = {
        "type": "array",
        "description": 'With h={"$onlycount": true}: the number of matching documents',
        "minItems": 1,
        "maxItems": 1,
        "items": {
            "type": "object",
            "required": ["count"],
            "properties": {"count": {"type": "integer", "minimum": 0}},
        },
    }
    response = copy.deepcopy(response)
    response["content"][JSON_MEDIA]["schema"] = {"anyOf": [declared, projected, page, count]}
    spec["responses"]["200"] = response


def _projection_of(document: dict[str, Any], items: Any) -> Any:
    """The schema of a projected document: a component ``<name>Projection`` beside a
    component ``<name>``, else inline."""
    ref = items.get("$ref") if isinstance(items, dict) else None
    prefix = "#/components/schemas/"
    if not (isinstance(ref, str) and ref.startswith(prefix) and "/" not in ref[len(prefix) :]):
        return _without_required(document, items)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    name = ref[len(prefix) :] + "Projection"
    if name not in schemas:
        schemas[name] = _without_required(document, items)
    return {"$ref": prefix + name}


def _without_required(document: dict[str, Any], schema: Any, depth: int = 0) -> Any:
    """``schema`` with every ``required`` dropped (local references followed a few levels):
    what a projection of a valid document still satisfies."""
    schema = follow_refs(document, schema)
    if not isinstance(schema, dict) or depth > 8:
        return copy.deepcopy(schema) if depth <= 8 else {}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "required":
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {k: _without_required(document, v, depth + 1) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _without_required(document, value, depth + 1)
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            out[key] = [_without_required(document, v, depth + 1) for v in value]
        else:
            out[key] = copy.deepcopy(value)
    return out
