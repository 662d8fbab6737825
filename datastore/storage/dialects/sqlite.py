"""The compiler's SQL on SQLite (JSON text, ``json_each``), and the functions of ours it
relies on, registered on each connection (``register``): ``regexp`` (RE2), ``json_equal``
(structural equality), ``json_fill`` (an object's nested defaults in one call),
``json_inherit`` / ``json_overlay`` (inherited values) and ``json_real`` (a REAL's shortest
JSON text)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

import datastore.storage.dialects.sqlite_compound  # noqa: F401 (registers SQL on import)
from datastore.jsonvalues import json_equal, with_defaults
from datastore.jsonvalues import json_type as json_type_name
from datastore.storage.dialects.base import (
    Dialect,
    const,
    lineage_ancestor,
    lineage_of_document,
)


class SQLite(Dialect):
    name = "sqlite"
    row_value_ranges = False  # only over plain columns; see storage/keyset.py ``expanded``
    equality_by_typed_view = True
    index_keeps_collection = True
    index_array_by_type = True
    naive_datetimes = True

    def insert(self, table: sa.Table) -> Any:
        return sqlite.insert(table)

    def indexable(self, path: tuple[str, ...]) -> bool:
        """Not a field with a key a JSON path cannot spell (``"``, ``\\``, a control
        character): it is read through a subquery, which no index can hold."""
        return plain_path(path)

    def existing_indexes(self, conn: Connection, names: list[str]) -> set[str]:
        rows: Iterable[Any] = conn.execute(
            sa.select(sa.column("name"))
            .select_from(sa.table("sqlite_master"))
            .where(sa.column("type") == "index", sa.column("name").in_(names))
        )
        return {row[0] for row in rows}

    def effective_body(self, documents: sa.Table, lineage: sa.Table) -> ColumnElement[Any]:
        ancestor = documents.alias("ancestor")
        inherited = (
            sa.select(sa.func.json_inherit(ancestor.c.body, lineage.c.depth))
            .select_from(lineage)
            .join(ancestor, lineage_ancestor(ancestor, lineage))
            .where(lineage_of_document(lineage, documents))
            .correlate(documents)
            .scalar_subquery()
        )
        return sa.func.json_overlay(documents.c.body, inherited)

    def field(self, body: ColumnElement[Any], path: tuple[str, ...]) -> ColumnElement[Any]:
        """Runs of plain keys as one JSON path (``$."a"."b"``); any other key through
        ``member``. SQLite's path syntax has no escapes (3.40 compares a quoted label with the
        key's JSON text as stored, and ends it at the first ``"``), so a key holding ``"``,
        ``\\`` or a control character cannot be spelt in a path."""
        x: ColumnElement[Any] = body
        plain: list[str] = []
        for part in path:
            if _plain_key(part):
                plain.append(part)
                continue
            x = self.member(self._path(x, plain), part)
            plain = []
        return self._path(x, plain)

    @staticmethod
    def _path(x: ColumnElement[Any], keys: list[str]) -> ColumnElement[Any]:
        if not keys:
            return x
        json_path = "$" + "".join(f'."{key}"' for key in keys)
        # Written into the SQL, not bound: SQLite uses an expression index only where the
        # query repeats its expression, constants included. And as the statement's text
        # (a literal column), not a value rendered at execution: SQLAlchemy's cache key then
        # tells two fields apart, which sqlite_compound.py's choice of ORDER BY relies on.
        path = sa.literal_column("'" + json_path.replace("'", "''") + "'", sa.Text)
        return x.op("->", return_type=sa.Text)(path)

    def member(self, x: ColumnElement[Any], key: str) -> ColumnElement[Any]:
        """The JSON text of ``x``'s member ``key`` (NULL when ``x`` is no object or lacks it),
        found by ``json_each``, whose ``key`` column is the decoded key."""
        obj = sa.case((sa.func.json_type(x) == "object", x), else_=None)
        each = sa.func.json_each(obj).table_valued("key", "value", "type").alias()
        return (
            sa.select(_element_json(each))
            .where(each.c.key == _text_constant(key))
            .correlate_except(each)
            .scalar_subquery()
        )

    def literal(self, value: Any) -> ColumnElement[Any]:
        return sa.func.json(sa.literal(orjson.dumps(value).decode(), sa.Text))

    # Every constant of a typed view is written into the SQL (``const``): the indexes of
    # ``x-datastore-indexes`` fields (storage/indexes.py) are over these expressions, and
    # SQLite matches an indexed expression only where the query repeats it exactly; a bound
    # parameter never matches one.

    def jtype(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        raw = sa.func.json_type(x, type_=sa.Text)
        return sa.case(
            (raw.in_([const("integer"), const("real")]), const("number")),
            (raw.in_([const("true"), const("false")]), const("boolean")),
            (raw == const("text"), const("string")),
            else_=raw,
        )

    def type_rank(self, x: ColumnElement[Any], ranks: Mapping[str, int]) -> ColumnElement[Any]:
        """One ``CASE json_type(x) WHEN ...``: the generic form maps the type first (a
        ``CASE`` of four ``json_type`` calls per comparison), which the sort index of an
        indexed field evaluated some twenty times per row written or sorted."""
        names = {"number": ("integer", "real"), "string": ("text",), "boolean": ("true", "false")}
        whens = [
            (const(raw), const(rank))
            for kind, rank in ranks.items()
            if rank
            for raw in names.get(kind, (kind,))
        ]
        return sa.case(*whens, value=self.raw_type(x), else_=const(0))

    def number(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        raw = sa.func.json_type(x, type_=sa.Text)
        value = sa.func.json_extract(x, const("$"))
        return sa.case((raw.in_([const("integer"), const("real")]), value), else_=None)

    def string(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        raw = sa.func.json_type(x, type_=sa.Text)
        value = sa.func.json_extract(x, const("$"))
        return sa.case((raw == const("text"), value), else_=None)

    def boolean(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        raw = sa.func.json_type(x, type_=sa.Text)
        return sa.case(
            (raw == const("true"), sa.true()), (raw == const("false"), sa.false()), else_=None
        )

    def equals(self, x: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
        kind = json_type_name(value)
        if kind == "number":
            return sa.and_(self.jtype(x) == "number", self.number(x) == value)
        if kind == "string":
            result: ColumnElement[bool] = self.string(x) == value
            return result
        if kind == "boolean":
            flag: ColumnElement[bool] = self.boolean(x) == value
            return flag
        if kind == "null":
            return self.jtype(x) == "null"
        return self.json_equal(x, self.literal(value))

    def json_equal(self, x: ColumnElement[Any], y: ColumnElement[Any]) -> ColumnElement[bool]:
        """Structural JSON equality (``json_equal``, registered below): SQLite's ``=``
        compares JSON texts, in which ``1`` and ``1.0`` or two key orders differ."""
        return sa.func.json_equal(x, y, type_=sa.Boolean)

    def fill_defaults(
        self,
        x: ColumnElement[Any],
        inner: Mapping[tuple[str, ...], Any],
        child: Callable[[str], ColumnElement[Any]],
    ) -> ColumnElement[Any]:
        # One call of this module's json_fill: setting keys one by one nests the SQL a
        # few levels per level of defaults, and SQLite's parser stack overflowed at five.
        spec = orjson.dumps(sorted([list(path), value] for path, value in inner.items()))
        return sa.func.json_fill(x, sa.literal(spec.decode(), sa.Text), type_=sa.Text)

    def json_string(self, text: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.func.json_quote(text, type_=sa.Text)

    def raw_type(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.func.json_type(x, type_=sa.Text)

    def number_literal(self, value: int | float) -> ColumnElement[Any]:
        # SQLAlchemy binds a Numeric as a double on SQLite, rounding integers beyond 2**53;
        # SQLite compares an INTEGER with a REAL exactly.
        kind = sa.Float() if isinstance(value, float) else sa.BigInteger()
        return sa.literal(value, kind)

    def datetime_text(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        # Stored as "2026-01-01 10:00:00.000000" (UTC; tables.UTCDateTime, always with
        # microseconds).
        stored = sa.type_coerce(column, sa.Text)
        return sa.func.replace(stored, " ", "T").concat("Z")

    def elements(self, x: ColumnElement[Any]) -> tuple[sa.Select[Any], ColumnElement[Any]]:
        array = sa.case((sa.func.json_type(x) == "array", x), else_=None)
        each = sa.func.json_each(array).table_valued("value", "type", "fullkey").alias("e")
        return sa.select(sa.literal(1)).select_from(each), _element_json(each)

    # SQLite's LIKE ignores the case of ASCII letters ({"$startsWith": "Po"} matched
    # "pollyanna"): the text's first (last) characters compared with ``=`` instead, which
    # is binary. ``length`` and ``substr`` count characters, as Python's ``len`` does.

    def starts_with(self, text: ColumnElement[Any], prefix: str) -> ColumnElement[bool]:
        head = sa.func.substr(text, 1, sa.literal(len(prefix), sa.Integer), type_=sa.Text)
        return head == sa.literal(prefix, sa.Text)

    def ends_with(self, text: ColumnElement[Any], suffix: str) -> ColumnElement[bool]:
        if not suffix:  # substr(text, -0) is all of text
            return text.is_not(None)
        tail = sa.func.substr(text, sa.literal(-len(suffix), sa.Integer), type_=sa.Text)
        return tail == sa.literal(suffix, sa.Text)

    def regex(self, text: ColumnElement[Any], pattern: str, flags: str) -> ColumnElement[bool]:
        from datastore.query.regex import normalise

        full = normalise(pattern, flags)
        return text.op("REGEXP", return_type=sa.Boolean)(sa.literal(full, sa.Text))


def _text_constant(text: str) -> ColumnElement[Any]:
    """``text`` written into the SQL as UTF-8 bytes (any character, NUL included), so that it
    is part of the statement's cache key (see ``_path``)."""
    utf8 = text.encode("utf-8", "surrogatepass").hex()
    return sa.literal_column(f"CAST(X'{utf8}' AS TEXT)", sa.Text)


def plain_path(path: tuple[str, ...]) -> bool:
    """Whether every key of ``path`` is spelt in a JSON path (its expression can be indexed:
    ``member`` is a subquery, which an index cannot hold)."""
    return all(_plain_key(key) for key in path)


def _plain_key(key: str) -> bool:
    """Whether a key's JSON text is the key itself (no ``"``, ``\\`` or control character)."""
    return not any(char in '"\\' or char < " " for char in key)


def _element_json(each: Any) -> ColumnElement[Any]:
    """The JSON text of a ``json_each`` row's value (SQLite gives scalars as SQL values). A
    real is printed by ``json_real`` (below), the shortest text of the same double:
    a text cast kept 15 digits, so 0.30000000000000004 came back as 0.3 and the largest double
    as infinity."""
    return sa.case(
        (each.c.type == "true", "true"),
        (each.c.type == "false", "false"),
        (each.c.type == "null", "null"),
        (each.c.type == "text", sa.func.json_quote(each.c.value)),
        (each.c.type == "real", sa.func.json_real(each.c.value)),
        else_=sa.cast(each.c.value, sa.Text),
    )


def _sqlite_regexp(pattern: str | None, value: Any) -> int | None:
    """SQLite's REGEXP function: ``value REGEXP pattern`` (flags inline, e.g. ``(?i)``), run by
    RE2 in linear time (see ``query/regex.py``)."""
    from datastore.query import regex

    if pattern is None or not isinstance(value, str):
        return None
    try:
        return 1 if regex.search(pattern, value) else 0
    except ValueError:
        return 0


def _sqlite_json_equal(left: Any, right: Any) -> int | None:
    """SQLite function ``json_equal(a, b)``: whether two JSON texts hold equal values, compared
    as decoded JSON (``[1]`` equals ``[1.0]``, ``{"a":1,"b":2}`` equals ``{"b":2,"a":1}``;
    SQLite's own ``=`` compares the texts). NULL when either is NULL (a missing value)."""
    if left is None or right is None:
        return None
    try:
        return 1 if json_equal(_decoded(left), _decoded(right)) else 0
    except orjson.JSONDecodeError:
        return 0


def _decoded(value: Any) -> Any:
    """A JSON text as its value; SQLite hands numbers over as numbers."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _sqlite_json_fill(value: str | None, spec: str) -> str | None:
    """SQLite function ``json_fill(value, spec)``: the JSON ``value`` with the schema defaults
    of ``spec`` (``[[path, default], ...]``, paths relative to it) filled in when it is an
    object, as ``jsonvalues.with_defaults`` (and the documents GET shows) fill them."""
    if value is None:
        return None
    decoded = orjson.loads(value)
    if not isinstance(decoded, dict):
        return value
    return orjson.dumps(with_defaults(decoded, _fill_spec(spec))).decode()


@functools.lru_cache(maxsize=256)
def _fill_spec(spec: str) -> dict[tuple[str, ...], Any]:
    return {tuple(path): default for path, default in orjson.loads(spec)}


class _JsonInherit:
    """SQLite aggregate ``json_inherit(body, depth)``: the ancestors' bodies merged, each
    property taken from the nearest ancestor (smallest depth) that sets it."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, Any]] = []

    def step(self, body: str | None, depth: int) -> None:
        if body is not None:
            self.rows.append((depth, orjson.loads(body)))

    def finalize(self) -> str:
        merged: dict[str, Any] = {}
        for _, body in sorted(self.rows, key=lambda row: row[0]):
            for key, value in body.items():
                if merged.get(key) is None and (value is not None or key not in merged):
                    merged[key] = value
        return orjson.dumps(merged).decode()


def _json_overlay(own: str | None, inherited: str | None) -> str | None:
    """SQLite function ``json_overlay(own, inherited)``: ``own`` with every property it does not
    set (missing or null) taken from ``inherited``."""
    if own is None:
        return inherited
    body = orjson.loads(own)
    if inherited is None:
        return own
    for key, value in orjson.loads(inherited).items():
        if body.get(key) is None and (value is not None or key not in body):
            body[key] = value
    return orjson.dumps(body).decode()


def _json_real(value: float | None) -> str | None:
    """SQLite function ``json_real(x)``: a REAL as JSON text, in the shortest form that reads
    back as the same double (as orjson writes it into documents). SQLite's own printing keeps
    15 digits (0.30000000000000004 became 0.3) and its ``%.17g`` gets the last digits wrong."""
    return None if value is None else orjson.dumps(float(value)).decode()


def register(dbapi_conn: Any) -> None:
    """Register the functions the compiler's SQLite SQL calls on a new connection."""
    dbapi_conn.create_function("regexp", 2, _sqlite_regexp, deterministic=True)
    dbapi_conn.create_aggregate("json_inherit", 2, _JsonInherit)
    dbapi_conn.create_function("json_overlay", 2, _json_overlay, deterministic=True)
    dbapi_conn.create_function("json_equal", 2, _sqlite_json_equal, deterministic=True)
    dbapi_conn.create_function("json_fill", 2, _sqlite_json_fill, deterministic=True)
    dbapi_conn.create_function("json_real", 1, _json_real, deterministic=True)
