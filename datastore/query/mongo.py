"""The Codehooks dialect: ``q=`` (Mongo-style JSON query), ``h=`` hints, URL keywords, and the
URL-parameter mode (``name=Polly``, ``age>3``, ``type=Dog,Cat``, ``!deleted``...), parsed into the
query tree. Every problem is a 400 naming the offending part (``q.age.$gt``, ``limit``...).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from datastore.errors import BadRequest, InvalidParam
from datastore.jsonvalues import contains_nul, json_depth, query_integer
from datastore.query import ast
from datastore.types import INT64_MAX

RESERVED = frozenset(
    {"q", "h", "a", "limit", "offset", "sort", "fields", "omit", "filters", "keyspace", "detach"}
)
COMPARE_OPS: dict[str, ast.CompareOp] = {
    "$eq": "eq",
    "$ne": "ne",
    "$gt": "gt",
    "$gte": "gte",
    "$lt": "lt",
    "$lte": "lte",
}
MAX_IN_VALUES = 1000
MAX_DEPTH = 16
MAX_PATH_PARTS = 64
"""Parts of a dotted field name (PostgreSQL's jsonb_extract_path takes at most 99: a sort by a
150-part name was refused by the database, a 503; no stored document is that deep)."""
_NUMBER = re.compile(r"^-?(?:0|[1-9]\d*|\d+)(?:\.\d+)?(?:[eE][+-]?\d+)?$")


def _bad(name: str, reason: str) -> BadRequest:
    return BadRequest("The query is not valid.", invalid_params=[InvalidParam(name, reason)])


def field_path(name: str, where: str) -> tuple[str, ...]:
    """``"a.b"`` → ``("a", "b")``; raises BadRequest for empty parts."""
    parts = tuple(name.split("."))
    if not name or any(not p for p in parts):
        raise _bad(where, f"{name!r} is not a field name")
    if len(parts) > MAX_PATH_PARTS:
        raise _bad(where, f"names a field {len(parts)} levels deep; at most {MAX_PATH_PARTS}")
    return parts


def _operand(name: str, where: str) -> ast.Operand:
    if name in ("_id",):
        return ast.Source("$id")
    return ast.Field(field_path(name, where))


def _value(value: Any, where: str) -> Any:
    """``{"$date": "..."}`` → the date string (dates are stored as ISO strings); milliseconds
    since 1970 outside years 1-9999 are a BadRequest (they were a 500)."""
    if isinstance(value, dict) and set(value) == {"$date"}:
        inner = value["$date"]
        if isinstance(inner, str):
            return inner
        if isinstance(inner, int | float) and not isinstance(inner, bool):
            from datetime import UTC, datetime

            try:
                moment = datetime.fromtimestamp(inner / 1000, UTC)
            except (OverflowError, ValueError, OSError):
                raise _bad(f"{where}.$date", "is not a time between the years 1 and 9999") from None
            return moment.isoformat().replace("+00:00", "Z")
    return value


def parse_mongo_query(query: Any, where: str = "q", depth: int = 0) -> ast.Node:
    """A decoded ``q`` object as a query tree; raises BadRequest naming the offending part."""
    if depth > MAX_DEPTH:
        raise _bad(where, "is nested too deeply")
    if not isinstance(query, dict):
        raise _bad(where, "must be a JSON object")
    items: list[ast.Node] = []
    for key, condition in query.items():
        here = f"{where}.{key}"
        if key in ("$and", "$or", "$nor"):
            if not isinstance(condition, list) or not condition:
                raise _bad(here, "must be a non-empty list of queries")
            parts = tuple(
                parse_mongo_query(c, f"{here}[{i}]", depth + 1) for i, c in enumerate(condition)
            )
            items.append(
                ast.And(parts)
                if key == "$and"
                else ast.Or(parts)
                if key == "$or"
                else ast.Not(ast.Or(parts))
            )
        elif key.startswith("$"):
            raise _bad(here, f"unknown top-level operator {key}")
        else:
            items.append(_condition(_operand(key, here), condition, here, depth))
    return items[0] if len(items) == 1 else ast.And(tuple(items))


def _is_operator_object(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(k.startswith("$") for k in value)


def _condition(field: ast.Operand, condition: Any, where: str, depth: int) -> ast.Node:
    if _is_operator_object(condition) and set(condition) != {"$date"}:
        return _operators(field, condition, where, depth)
    if (
        isinstance(condition, dict)
        and any(k.startswith("$") for k in condition)
        and set(condition) != {"$date"}
    ):
        raise _bad(where, "mixes operators and plain fields")
    return ast.Compare(field, "eq", _value(condition, where))


def _list(value: Any, where: str) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise _bad(where, "must be a list")
    if len(value) > MAX_IN_VALUES:
        raise _bad(where, f"may hold at most {MAX_IN_VALUES} values")
    return tuple(_value(v, f"{where}[{i}]") for i, v in enumerate(value))


def check_regex(pattern: Any, where: str, flags: str = "") -> str:
    """``pattern`` if it is a usable regular expression (see ``query/regex.py``); raises
    BadRequest otherwise."""
    from datastore.query import regex

    if not isinstance(pattern, str):
        raise _bad(where, "must be a string")
    reason = regex.problem(pattern, flags)
    if reason is not None:
        raise _bad(where, reason)
    return pattern


def _flags(options: Any, where: str) -> str:
    if not isinstance(options, str) or set(options) - set("imsx"):
        raise _bad(where, "may only hold the flags i, m, s, x")
    return "".join(sorted(set(options)))


def _operators(field: ast.Operand, ops: dict[str, Any], where: str, depth: int) -> ast.Node:
    items: list[ast.Node] = []
    if "$options" in ops and "$regex" not in ops:
        raise _bad(f"{where}.$options", "needs $regex")
    for op, arg in ops.items():
        here = f"{where}.{op}"
        if op in COMPARE_OPS:
            items.append(ast.Compare(field, COMPARE_OPS[op], _value(arg, here)))
        elif op in ("$in", "$nin"):
            node: ast.Node = ast.In(field, _list(arg, here))
            items.append(node if op == "$in" else ast.Not(node))
        elif op == "$exists":
            if not isinstance(arg, bool):
                raise _bad(here, "must be true or false")
            items.append(ast.Exists(field, arg))
        elif op == "$regex":
            items.append(_regex(field, arg, ops.get("$options", ""), here))
        elif op == "$options":
            continue
        elif op == "$not":
            if isinstance(arg, str):
                items.append(ast.Not(ast.Regex(field, check_regex(arg, here))))
            elif _is_operator_object(arg):
                items.append(ast.Not(_operators(field, arg, here, depth + 1)))
            else:
                raise _bad(here, "must be an operator object or a regular expression")
        elif op == "$elemMatch":
            items.append(_elem_match(field, arg, here, depth))
        elif op == "$all":
            values = _list(arg, here)
            if not values:
                raise _bad(here, "must list at least one value")
            items.append(ast.ArrayAll(field, values))
        elif op == "$size":
            if isinstance(arg, bool) or not isinstance(arg, int) or arg < 0:
                raise _bad(here, "must be a whole number, 0 or more")
            items.append(ast.ArraySize(field, _int(arg, here, maximum=INT64_MAX)))
        elif op in ("$startsWith", "$endsWith"):
            if not isinstance(arg, str):
                raise _bad(here, "must be a string")
            items.append(ast.StringMatch(field, "prefix" if op == "$startsWith" else "suffix", arg))
        else:
            raise _bad(here, f"unknown operator {op}")
    return items[0] if len(items) == 1 else ast.And(tuple(items))


def _regex(field: ast.Operand, pattern: Any, options: Any, where: str) -> ast.Node:
    flags = _flags(options, where)
    return ast.Regex(field, check_regex(pattern, where, flags), flags)


def _elem_match(field: ast.Operand, arg: Any, where: str, depth: int) -> ast.Node:
    if not isinstance(arg, dict) or not arg:
        raise _bad(where, "must be a non-empty query object")
    if _is_operator_object(arg):
        inner = _operators(ast.Field(()), arg, where, depth + 1)
    else:
        inner = parse_mongo_query(arg, where, depth + 1)
    return ast.ElemMatch(field, inner)


# -- hints and URL keywords ---------------------------------------------------------------


@dataclass(frozen=True)
class ListRequest:
    """A list request in the Codehooks dialect."""

    filter: ast.Node
    sort: tuple[ast.SortKey, ...]
    limit: int
    offset: int
    projection: ast.Projection | None
    count_only: bool = False
    has_selector: bool = False


def _json_param(raw: str, name: str, max_depth: int) -> Any:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _bad(name, f"is not valid JSON: {exc}") from None
    if contains_nul(value):
        raise _bad(name, "contains a NUL character")
    if json_depth(value, max_depth) > max_depth:  # 255 levels broke the SQL compiler: a 500
        raise _bad(name, f"may be nested at most {max_depth} levels deep")
    return value


def _int(value: Any, name: str, *, maximum: int | None = None) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(name, "must be a whole number, 0 or more")
    if maximum is not None and value > maximum:
        raise _bad(name, f"must be at most {maximum}")
    return value


def parse_sort_text(text: str, name: str = "sort") -> tuple[ast.SortKey, ...]:
    """``-age,name,+city`` → sort keys."""
    keys = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        descending = part.startswith("-")
        field = part.lstrip("+-")
        keys.append(ast.SortKey(_operand(field, name), descending))
    return tuple(keys)


def _sort_object(value: Any, name: str) -> tuple[ast.SortKey, ...]:
    if isinstance(value, str):
        return parse_sort_text(value, name)
    if not isinstance(value, dict):
        raise _bad(name, 'must be an object like {"name": 1, "age": -1}')
    keys = []
    for field, direction in value.items():
        if direction not in (1, -1, "asc", "desc"):
            raise _bad(f"{name}.{field}", "must be 1 or -1")
        keys.append(ast.SortKey(_operand(field, name), direction in (-1, "desc")))
    return tuple(keys)


def _projection(value: Any, name: str) -> ast.Projection | None:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        paths = tuple(field_path(str(v).strip(), name) for v in value)
        return ast.Projection(paths, include=True) if paths else None
    if not isinstance(value, dict):
        raise _bad(name, 'must be an object like {"name": 1}')
    if not value:
        return None
    others = {k: v for k, v in value.items() if k != "_id"}
    modes = {bool(v) for v in others.values()}
    if len(modes) > 1:
        raise _bad(name, "cannot both include and exclude fields")
    if not others:
        return None if value.get("_id") else ast.Projection((("_id",),), include=False)
    paths = tuple(field_path(k, name) for k in others)
    return ast.Projection(paths, include=modes.pop())


def url_value(text: str) -> Any:
    """A URL condition's value as JSON: true, false, null, a number (exactly), else text."""
    if text == "true":
        return True
    if text == "false":
        return False
    if text == "null":
        return None
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    if _NUMBER.match(text) and not re.match(r"^-?0\d", text):
        number = float(text)
        if not math.isfinite(number):
            return text  # 1e400 names no number a document can hold
        if "." not in text and "e" not in text.lower():
            return query_integer(int(text))  # exactly, not through a float
        return number
    return text


_URL_KEY = re.compile(r"^(!?)([^<>!:]+?)(?:(>=|<=|>|<|!)(.*)|:([A-Za-z]+))?$", re.S)


def _url_conditions(params: Iterable[tuple[str, str]]) -> list[ast.Node]:
    """The URL-parameter mode: every non-reserved parameter is a condition."""
    nodes: list[ast.Node] = []
    for key, raw in params:
        if key in RESERVED or key.startswith("page["):
            continue
        match = _URL_KEY.match(key)
        if match is None:
            raise _bad(key, "is not a condition this datastore understands")
        negated_key, name, op, in_key, named = match.groups()
        field = _operand(name, key)
        if in_key:
            # "age>3" arrives as the key "age>3" with no value; "age>=3" as "age>" = "3".
            if raw:
                raise _bad(key, "has a value twice")
            raw, op = in_key, {">": ">!", "<": "<!"}.get(op, op)
        if negated_key:
            if raw:
                raise _bad(key, "!field takes no value")
            nodes.append(ast.Exists(field, False))
            continue
        if named:
            values = [url_value(v) for v in raw.split(",")] if raw else []
            nodes.append(_named_url_op(field, named.lower(), values, raw, key))
            continue
        if op in (">", "<", ">=", "<=", ">!", "<!"):
            if not raw:
                raise _bad(key, "needs a value")
            # The key's own ">" became ">=" when the URL said "age>=3" (split at "=").
            ops = {">": "gte", "<": "lte", ">=": "gte", "<=": "lte", ">!": "gt", "<!": "lt"}
            nodes.append(ast.Compare(field, ops[op], url_value(raw)))  # type: ignore[arg-type]
            continue
        negate = op == "!"
        if not negate and raw.startswith("!"):
            negate, raw = True, raw[1:]
        if not raw and not negate and op is None:
            nodes.append(ast.Exists(field, True))
            continue
        node: ast.Node
        regex = re.match(r"^/(.*)/([a-z]*)$", raw, re.S)
        if regex:
            flags = _flags(regex.group(2), key)
            node = ast.Regex(field, check_regex(regex.group(1), key, flags), flags)
        elif "," in raw:
            node = ast.In(field, tuple(url_value(v) for v in raw.split(",")))
        else:
            node = ast.Compare(field, "eq", url_value(raw))
        nodes.append(ast.Not(node) if negate else node)
    return nodes


def _named_url_op(field: ast.Operand, op: str, values: list[Any], raw: str, key: str) -> ast.Node:
    if op == "all":
        if not values:
            raise _bad(key, "needs values")
        return ast.ArrayAll(field, tuple(values))
    if op == "size":
        return ast.ArraySize(field, _int(raw, key, maximum=INT64_MAX))
    if op in ("in", "nin"):
        node: ast.Node = ast.In(field, tuple(values))
        return node if op == "in" else ast.Not(node)
    if op in ("gt", "gte", "lt", "lte", "eq", "ne") and len(values) == 1:
        return ast.Compare(field, op, values[0])  # type: ignore[arg-type]
    if op == "exists":
        return ast.Exists(field, raw != "false")
    raise _bad(key, f"unknown operator :{op}")


def parse_list_request(
    params: Iterable[tuple[str, str]],
    *,
    default_limit: int,
    max_limit: int,
    max_json_depth: int = 64,
) -> ListRequest:
    """A Codehooks list request from the URL's query parameters (``q`` and ``h`` nested at most
    ``max_json_depth`` levels, like bodies)."""
    pairs = list(params)
    single: dict[str, str] = {}
    for key, value in pairs:
        if key in single and key in ("q", "h", "limit", "offset", "sort", "fields", "omit"):
            raise _bad(key, "is given more than once")
        single.setdefault(key, value)
    node: ast.Node = ast.TRUE
    has_selector = False
    if "q" in single or "h" in single:
        if "q" in single:
            node = parse_mongo_query(_json_param(single["q"], "q", max_json_depth))
            has_selector = True
    else:
        conditions = _url_conditions(pairs)
        if conditions:
            node = conditions[0] if len(conditions) == 1 else ast.And(tuple(conditions))
            has_selector = True
    hints = _json_param(single["h"], "h", max_json_depth) if "h" in single else {}
    if not isinstance(hints, dict):
        raise _bad("h", "must be a JSON object")
    sort: tuple[ast.SortKey, ...] = ()
    projection = None
    limit = default_limit
    offset = 0
    count_only = False
    for key, value in hints.items():
        here = f"h.{key}"
        if key in ("fields", "$fields", "projection"):
            projection = _projection(value, here)
        elif key in ("sort", "$sort"):
            sort = _sort_object(value, here)
        elif key in ("skip", "offset", "$offset", "$skip"):
            offset = _int(value, here, maximum=INT64_MAX)
        elif key in ("limit", "$limit"):
            limit = _int(value, here, maximum=max_limit)
        elif key in ("$onlycount", "$count", "count"):
            count_only = bool(value)
        else:
            raise _bad(here, "is not a known hint")
    if "limit" in single:
        limit = _int(single["limit"], "limit", maximum=max_limit)
    if "offset" in single:
        offset = _int(single["offset"], "offset", maximum=INT64_MAX)
    if "sort" in single:
        sort = parse_sort_text(single["sort"])
    if "fields" in single:
        projection = _projection(single["fields"], "fields")
    if "omit" in single:
        omitted = _projection(single["omit"], "omit")
        projection = ast.Projection(omitted.paths, include=False) if omitted else None
    return ListRequest(node, sort, limit, offset, projection, count_only, has_selector)


def apply_projection(
    document: Mapping[str, Any], projection: ast.Projection | None, id_property: str | None
) -> dict[str, Any]:
    """The document with only the included (or without the excluded) fields; the id stays
    unless excluded explicitly."""
    if projection is None:
        return dict(document)
    if projection.include:
        out: dict[str, Any] = {}
        if (
            id_property is not None
            and id_property in document
            and (id_property,) not in list(projection.paths)
        ):
            out[id_property] = document[id_property]
        for path in projection.paths:
            _copy_path(document, out, path)
        return out
    result: dict[str, Any] = _deep_copy(document)
    for path in projection.paths:
        _drop_path(result, path)
    return result


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _copy_path(source: Mapping[str, Any], target: dict[str, Any], path: tuple[str, ...]) -> None:
    node: Any = source
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return
        node = node[part]
    cursor = target
    for part in path[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[path[-1]] = _deep_copy(node)


def _drop_path(target: dict[str, Any], path: tuple[str, ...]) -> None:
    node: Any = target
    for part in path[:-1]:
        if not isinstance(node, dict) or part not in node:
            return
        node = node[part]
    if isinstance(node, dict):
        node.pop(path[-1], None)
