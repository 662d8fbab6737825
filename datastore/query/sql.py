"""The one compiler: query tree → SQLAlchemy Core, identical semantics on both backends.

Every field is first turned into a *JSON expression* (``jsonb`` on PostgreSQL, JSON text via
SQLite's ``->`` operator), SQL NULL when the property is missing, with schema defaults applied
exactly as ``blueprint.schemas.apply_defaults`` applies them to what GET shows: a default in place
of a missing property (a null is a value), a nested one only inside an object that is present (or
itself defaulted), and an object's value with the defaults inside it filled in. Comparisons then go
through four typed views of that expression — its JSON type, and its value as a number, a string or
a boolean, each NULL unless the JSON type matches — so a comparison only ever matches values of the
same JSON type (``"10" > 9`` is false) and no cast can fail. ``CASE`` guards every cast, because
SQL does not promise to evaluate ``AND`` left to right. Array fields match Mongo-style: a condition
holds if it holds for the whole value or, for arrays, for any element (``EXISTS`` over
``jsonb_array_elements`` / ``json_each``). A leaf may be NULL (unknown), which WHERE treats as
false; ``NOT`` wraps its operand in ``COALESCE(..., false)`` so it never meets a NULL, and the bare
leaves stay index-friendly.

Field names and values reach SQL only as bound parameters or as literals SQLAlchemy quotes:
JSON paths are key arrays (PostgreSQL) or ``$."a"."b"`` path strings (SQLite), where a key a
path cannot spell (one holding ``"``, ``\\`` or a control character) is looked up with
``json_each`` instead, so every key means the same on both backends.

Sorting orders by a type rank first (missing/null < number < string < object < array <
boolean), then by the typed values (objects and arrays do not order among themselves; strings
by code point: ``COLLATE "C"`` on PostgreSQL, SQLite's
binary collation), and the caller appends the creation order. ``sort_columns`` returns the
non-NULL column expressions of that order so keyset cursors can compare against them exactly.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement

from datastore.errors import BadRequest
from datastore.jsonvalues import json_equal, with_defaults
from datastore.jsonvalues import json_type as json_type_name
from datastore.query import ast
from datastore.storage.union import exclusive_or

JSONB = postgresql.JSONB
_DATETIME_SOURCES = ("$createdDatetime", "$updatedDatetime")
_TEXT_SOURCES = ("$id", "$extends")
_RANGE: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
"""The range operators of the query tree on SQL expressions."""
_COMPARE: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    **_RANGE,
}
_RANK = {"null": 0, "number": 1, "string": 2, "object": 3, "array": 4, "boolean": 5}


@dataclass(frozen=True)
class DocumentColumns:
    """What the compiler compiles against: the body, the source columns, the defaults."""

    body: ColumnElement[Any]
    sources: Mapping[str, ColumnElement[Any]]
    defaults: Mapping[tuple[str, ...], Any] = field(default_factory=dict)
    """Schema defaults by property path (``SchemaInfo.default_paths``)."""
    stored_body: bool = True
    """Whether ``body`` is the stored column itself (so GIN containment can be used)."""
    indexed: frozenset[tuple[str, ...]] = frozenset()
    """Fields with ``x-datastore-indexes`` expression indexes (PostgreSQL)."""


def _false() -> ColumnElement[bool]:
    return sa.false()


def _safe(expression: ColumnElement[Any]) -> ColumnElement[bool]:
    return sa.func.coalesce(expression, sa.false())


class _Dialect:
    """The typed views of a JSON expression; one subclass per backend."""

    name = ""

    def field(self, body: ColumnElement[Any], path: tuple[str, ...]) -> ColumnElement[Any]:
        raise NotImplementedError

    def literal(self, value: Any) -> ColumnElement[Any]:
        raise NotImplementedError

    def jtype(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        raise NotImplementedError

    def number(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        raise NotImplementedError

    def string(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        raise NotImplementedError

    def boolean(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        raise NotImplementedError

    def equals(self, x: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
        raise NotImplementedError

    def json_equal(self, x: ColumnElement[Any], y: ColumnElement[Any]) -> ColumnElement[bool]:
        """Whether two JSON expressions hold equal values (numbers by value, objects whatever
        their key order)."""
        raise NotImplementedError

    def fill_defaults(
        self,
        x: ColumnElement[Any],
        inner: Mapping[tuple[str, ...], Any],
        child: Callable[[str], ColumnElement[Any]],
    ) -> ColumnElement[Any]:
        """``x`` with the defaults ``inner`` (by path relative to ``x``) filled in when it is
        an object; ``child(key)`` is the filled value of a key of ``x`` (NULL when missing and
        without a default), for a backend that sets keys one by one."""
        raise NotImplementedError

    def json_string(self, text: ColumnElement[Any]) -> ColumnElement[Any]:
        """A text column as a JSON string."""
        raise NotImplementedError

    def has_type(self, x: ColumnElement[Any], kind: str) -> ColumnElement[bool]:
        """Whether a JSON value is ``null``, an ``object`` or an ``array`` (NULL when missing):
        the backend's own type function, without ``jtype``'s mapping."""
        raise NotImplementedError

    def number_literal(self, value: int | float) -> ColumnElement[Any]:
        """A number bound so that it compares with ``number`` views as Python compares the
        decoded values (a 64-bit integer exactly, not rounded to a double)."""
        raise NotImplementedError

    def datetime_text(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """A UTC datetime column as ``documents.sources.format_datetime`` writes it:
        ``2026-01-01T10:00:00.000000Z``."""
        raise NotImplementedError

    def elements(self, x: ColumnElement[Any]) -> tuple[sa.Select[Any], ColumnElement[Any]]:
        """(a FROM-able select over the array's elements, the element's JSON expression)."""
        raise NotImplementedError

    def regex(self, text: ColumnElement[Any], pattern: str, flags: str) -> ColumnElement[bool]:
        raise NotImplementedError

    def collate(self, text: ColumnElement[Any]) -> ColumnElement[Any]:
        return text


class _PostgreSQL(_Dialect):
    name = "postgresql"

    def field(self, body: ColumnElement[Any], path: tuple[str, ...]) -> ColumnElement[Any]:
        if not path:
            return body
        # Keys are written into the SQL (quoted by SQLAlchemy), not bound: an expression index
        # applies only where the query repeats its expression, constants included, and a
        # prepared statement's generic plan sees bound values as unknown.
        parts = [sa.literal(p, sa.Text, literal_execute=True) for p in path]
        return sa.func.jsonb_extract_path(body, *parts, type_=JSONB)

    def literal(self, value: Any) -> ColumnElement[Any]:
        return sa.cast(sa.literal(orjson.dumps(value).decode(), sa.Text), JSONB)

    def jtype(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.func.jsonb_typeof(x)

    def _scalar(self, x: ColumnElement[Any], kind: str, cast: Any) -> ColumnElement[Any]:
        text = x.op("#>>", return_type=sa.Text)(sa.literal_column("'{}'::text[]"))
        is_kind = sa.func.jsonb_typeof(x) == _const(kind)
        return sa.case((is_kind, sa.cast(text, cast)), else_=None)

    def number(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        return self._scalar(x, "number", sa.Numeric)

    def string(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        return self._scalar(x, "string", sa.Text)

    def boolean(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        return self._scalar(x, "boolean", sa.Boolean)

    def equals(self, x: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
        return x == self.literal(value)

    def json_equal(self, x: ColumnElement[Any], y: ColumnElement[Any]) -> ColumnElement[bool]:
        return x == y  # jsonb equality is structural

    def fill_defaults(
        self,
        x: ColumnElement[Any],
        inner: Mapping[tuple[str, ...], Any],
        child: Callable[[str], ColumnElement[Any]],
    ) -> ColumnElement[Any]:
        filled = x
        for key in sorted({path[0] for path in inner}):
            # A key with a default is always set; one with defaults only deeper only when x
            # has it (jsonb_set is strict: a NULL value must not null the object).
            create = (key,) in inner
            value = child(key) if create else sa.func.coalesce(child(key), self.literal(None))
            path = sa.literal([key], postgresql.ARRAY(sa.Text))
            filled = sa.func.jsonb_set(filled, path, value, sa.literal(create), type_=JSONB)
        return sa.case((self.has_type(x, "object"), filled), else_=x)

    def json_string(self, text: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.func.to_jsonb(sa.cast(text, sa.Text), type_=JSONB)

    def has_type(self, x: ColumnElement[Any], kind: str) -> ColumnElement[bool]:
        return sa.func.jsonb_typeof(x) == _const(kind)

    def number_literal(self, value: int | float) -> ColumnElement[Any]:
        # A float as the decimal of its shortest text, which is how a stored JSON number
        # reads: a float parameter made PostgreSQL compare in double precision, so stored
        # integers beyond 2**53 were rounded (2**53 + 1 > 2.0**53 was false).
        exact = Decimal(repr(value)) if isinstance(value, float) else value
        return sa.literal(exact, sa.Numeric)

    def datetime_text(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        utc = sa.func.timezone("UTC", column)
        return sa.func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"', type_=sa.Text)

    def elements(self, x: ColumnElement[Any]) -> tuple[sa.Select[Any], ColumnElement[Any]]:
        array = sa.case((sa.func.jsonb_typeof(x) == "array", x), else_=None)
        each = sa.func.jsonb_array_elements(array).table_valued("value").alias("e")
        return sa.select(sa.literal(1)).select_from(each), each.c.value

    def regex(self, text: ColumnElement[Any], pattern: str, flags: str) -> ColumnElement[bool]:
        from datastore.query.regex import postgres

        # RE2's meaning as an ARE of explicit code point sets and anchors (query/regex.py).
        are = postgres(pattern, flags)
        return text.op("~", return_type=sa.Boolean)(sa.literal(are, sa.Text))

    def collate(self, text: ColumnElement[Any]) -> ColumnElement[Any]:
        return text.collate("C")


class _SQLite(_Dialect):
    name = "sqlite"

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
        return x.op("->", return_type=sa.Text)(sa.literal(json_path, sa.Text))

    def member(self, x: ColumnElement[Any], key: str) -> ColumnElement[Any]:
        """The JSON text of ``x``'s member ``key`` (NULL when ``x`` is no object or lacks it),
        found by ``json_each``, whose ``key`` column is the decoded key."""
        obj = sa.case((sa.func.json_type(x) == "object", x), else_=None)
        each = sa.func.json_each(obj).table_valued("key", "value", "type").alias()
        return (
            sa.select(_element_json(each))
            .where(each.c.key == sa.literal(key, sa.Text))
            .correlate_except(each)
            .scalar_subquery()
        )

    def literal(self, value: Any) -> ColumnElement[Any]:
        return sa.func.json(sa.literal(orjson.dumps(value).decode(), sa.Text))

    def jtype(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        raw = sa.func.json_type(x)
        return sa.case(
            (raw.in_(["integer", "real"]), "number"),
            (raw.in_(["true", "false"]), "boolean"),
            (raw == "text", "string"),
            else_=raw,
        )

    def number(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.case(
            (sa.func.json_type(x).in_(["integer", "real"]), sa.func.json_extract(x, "$")),
            else_=None,
        )

    def string(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.case((sa.func.json_type(x) == "text", sa.func.json_extract(x, "$")), else_=None)

    def boolean(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        raw = sa.func.json_type(x)
        return sa.case((raw == "true", sa.true()), (raw == "false", sa.false()), else_=None)

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
        """Structural JSON equality (``storage/engine.py``'s ``json_equal``): SQLite's ``=``
        compares JSON texts, in which ``1`` and ``1.0`` or two key orders differ."""
        return sa.func.json_equal(x, y, type_=sa.Boolean)

    def fill_defaults(
        self,
        x: ColumnElement[Any],
        inner: Mapping[tuple[str, ...], Any],
        child: Callable[[str], ColumnElement[Any]],
    ) -> ColumnElement[Any]:
        # One call of storage/engine.py's json_fill: setting keys one by one nests the SQL a
        # few levels per level of defaults, and SQLite's parser stack overflowed at five.
        spec = orjson.dumps(sorted([list(path), value] for path, value in inner.items()))
        return sa.func.json_fill(x, sa.literal(spec.decode(), sa.Text), type_=sa.Text)

    def json_string(self, text: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.func.json_quote(text, type_=sa.Text)

    def has_type(self, x: ColumnElement[Any], kind: str) -> ColumnElement[bool]:
        return sa.func.json_type(x) == _const(kind)

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

    def regex(self, text: ColumnElement[Any], pattern: str, flags: str) -> ColumnElement[bool]:
        from datastore.query.regex import normalise

        full = normalise(pattern, flags)
        return text.op("REGEXP", return_type=sa.Boolean)(sa.literal(full, sa.Text))


def _plain_key(key: str) -> bool:
    """Whether a key's JSON text is the key itself (no ``"``, ``\\`` or control character)."""
    return not any(char in '"\\' or char < " " for char in key)


def _element_json(each: Any) -> ColumnElement[Any]:
    """The JSON text of a ``json_each`` row's value (SQLite gives scalars as SQL values). A
    real is printed by ``json_real`` (storage/engine.py), the shortest text of the same double:
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


def dialect_for(name: str) -> _Dialect:
    """The compiler's view of a backend (``postgresql`` or ``sqlite``)."""
    return _PostgreSQL() if name == "postgresql" else _SQLite()


class Compiler:
    """Compiles query trees for one backend and one set of document columns."""

    def __init__(self, cols: DocumentColumns, dialect: str) -> None:
        self.cols = cols
        self.d = dialect_for(dialect)
        self._sorts: dict[ast.SortKey, list[tuple[ColumnElement[Any], bool]]] = {}
        self._indexed: dict[tuple[str, ...], dict[str, ColumnElement[Any]]] = {}
        self._default_prefixes = frozenset(
            path[:end] for path in cols.defaults for end in range(1, len(path) + 1)
        )

    # -- values ---------------------------------------------------------------------------

    def value(
        self, operand: ast.Field, base: ColumnElement[Any] | None = None
    ) -> ColumnElement[Any]:
        """The JSON expression of a body field, schema defaults applied (see the module
        docstring); a field no default reaches is read straight from the body (indexable)."""
        if base is not None:
            return self.d.field(base, operand.path)
        if not self.defaults_reach(operand.path):
            return self.d.field(self.cols.body, operand.path)
        return self._defaulted(operand.path)

    def defaults_reach(self, path: tuple[str, ...]) -> bool:
        """Whether a schema default can change the value at ``path``: one at it, above it or
        inside it."""
        defaults = self.cols.defaults
        return path in self._default_prefixes or any(
            path[:end] in defaults for end in range(1, len(path))
        )

    def _defaulted(self, path: tuple[str, ...]) -> ColumnElement[Any]:
        """The value at ``path`` with the defaults: where the stored body lacks a defaulted
        prefix of ``path`` (the first, top down), a constant (the default, filled and
        followed to ``path``); otherwise the stored value with the defaults inside it filled
        in. Every part reads the stored body afresh: nesting each level in the one above
        grew the SQL exponentially with depth (SQLite's parser overflowed)."""
        whens = [
            (self._default_applies(path[:end]), self._from_default(path[:end], path))
            for end in range(1, len(path) + 1)
            if path[:end] in self.cols.defaults
        ]
        filled = self._filled(path)
        return sa.case(*whens, else_=filled) if whens else filled

    def _default_applies(self, prefix: tuple[str, ...]) -> ColumnElement[bool]:
        """Whether the stored value at ``prefix`` is missing (a null is a value), inside an
        object (a nested default applies only there; every default above it is known not to
        apply)."""
        missing = self.d.field(self.cols.body, prefix).is_(None)
        if len(prefix) == 1:
            return missing
        parent = self.d.field(self.cols.body, prefix[:-1])
        return sa.and_(self.d.has_type(parent, "object"), missing)

    def _from_default(self, prefix: tuple[str, ...], path: tuple[str, ...]) -> ColumnElement[Any]:
        """The value at ``path`` when ``prefix`` takes its default: a constant (SQL NULL when
        the default has nothing there)."""
        depth = len(prefix)
        inner = {
            p[depth:]: v
            for p, v in self.cols.defaults.items()
            if len(p) > depth and p[:depth] == prefix
        }
        value = with_defaults(self.cols.defaults[prefix], inner)
        for part in path[depth:]:
            if not isinstance(value, Mapping) or part not in value:
                return sa.null()
            value = value[part]
        return self.d.literal(value)

    def _filled(self, path: tuple[str, ...]) -> ColumnElement[Any]:
        """The stored value at ``path`` with the defaults inside it filled in when it is an
        object (what GET shows of a whole object)."""
        x = self.d.field(self.cols.body, path)
        depth = len(path)
        inner = {
            p[depth:]: v
            for p, v in self.cols.defaults.items()
            if len(p) > depth and p[:depth] == path
        }
        if not inner:
            return x
        return self.d.fill_defaults(x, inner, lambda key: self._filled_child((*path, key)))

    def _filled_child(self, child: tuple[str, ...]) -> ColumnElement[Any]:
        """The value at ``child`` inside an object that is stored: its default when it is
        missing, else the stored value filled in."""
        if child not in self.cols.defaults:
            return self._filled(child)
        missing = self.d.field(self.cols.body, child).is_(None)
        return sa.case((missing, self._from_default(child, child)), else_=self._filled(child))

    # -- filters --------------------------------------------------------------------------

    def filter(self, node: ast.Node, base: ColumnElement[Any] | None = None) -> ColumnElement[bool]:
        """The WHERE expression of a filter."""
        if isinstance(node, ast.Const):
            return sa.true() if node.value else sa.false()
        if isinstance(node, ast.And):
            return sa.and_(sa.true(), *[self.filter(i, base) for i in node.items])
        if isinstance(node, ast.Or):
            return sa.or_(sa.false(), *[self.filter(i, base) for i in node.items])
        if isinstance(node, ast.Not):
            # Leaves may be NULL (SQL's unknown), which a WHERE treats as false; only NOT needs
            # them made definite. Leaving the leaves bare keeps them index-friendly.
            return sa.not_(_safe(self.filter(node.item, base)))
        if isinstance(node, ast.CompareFields):
            return self._compare_fields(node, base)
        if isinstance(node.field, ast.Source):
            return self._source(node)
        return self._leaf(node, base)

    def _compare_fields(
        self, node: ast.CompareFields, base: ColumnElement[Any] | None
    ) -> ColumnElement[bool]:
        left, right = self._json_operand(node.left, base), self._json_operand(node.right, base)
        return sa.and_(
            left.is_not(None), right.is_not(None), self._compare_exprs(left, node.op, right)
        )

    def _json_operand(
        self, operand: ast.Operand, base: ColumnElement[Any] | None
    ) -> ColumnElement[Any]:
        """A field's JSON expression; a source's as the JSON string rules see."""
        if isinstance(operand, ast.Source):
            return self.d.json_string(self.source_as_shown(operand.name))
        return self.value(operand, base)

    def source_as_shown(self, name: str) -> ColumnElement[Any]:
        """A source property as GET shows it and rules see it (``http/guard.document_view``):
        its text, ``""`` for no ``$extends``, a datetime as ``format_datetime`` writes it."""
        column = self.cols.sources[name]
        if name in _DATETIME_SOURCES:
            return self.d.datetime_text(column)
        if name == "$extends":
            return sa.func.coalesce(column, "")
        return column

    def _leaf(self, node: ast.Node, base: ColumnElement[Any] | None) -> ColumnElement[bool]:
        assert not isinstance(node, ast.And | ast.Or | ast.Not | ast.Const | ast.CompareFields)
        assert isinstance(node.field, ast.Field)
        fast = self._containment(node, base)
        if fast is not None:
            return fast
        x = self.value(node.field, base)
        if isinstance(node, ast.Exists):
            return x.is_not(None) if node.exists else x.is_(None)
        if isinstance(node, ast.Compare):
            return self._compare(x, node, top_level=base is None)
        if isinstance(node, ast.In):
            return self._in(x, node)
        if isinstance(node, ast.Regex):
            return self._any(x, lambda e: self.d.regex(self.d.string(e), node.pattern, node.flags))
        if isinstance(node, ast.StringMatch):
            value = node.value
            if node.kind == "prefix":
                return self._any(x, lambda e: self.d.string(e).startswith(value, autoescape=True))
            return self._any(x, lambda e: self.d.string(e).endswith(value, autoescape=True))
        if isinstance(node, ast.ArrayAll):
            if not node.values:
                return sa.false()
            return sa.and_(*[self._contains(x, v) for v in node.values])
        if isinstance(node, ast.ArrayWithin):
            select, element = self.d.elements(x)
            allowed = sa.or_(sa.false(), *[self._safe_equals(element, v) for v in node.values])
            return sa.and_(self.d.jtype(x) == "array", ~select.where(~allowed).exists())
        if isinstance(node, ast.ArraySize):
            select, _ = self.d.elements(x)
            count = sa.select(sa.func.count()).select_from(select.subquery()).scalar_subquery()
            return sa.and_(self.d.jtype(x) == "array", count == node.size)
        if isinstance(node, ast.ElemMatch):
            select, element = self.d.elements(x)
            return select.where(self.filter(node.query, element)).exists()
        raise AssertionError(node)

    def _containment(
        self, node: ast.Node, base: ColumnElement[Any] | None
    ) -> ColumnElement[bool] | None:
        """Scalar equality as GIN-indexable containment on PostgreSQL:
        ``body @> {"a": v} OR body @> {"a": [v]}`` (equal, or an array holding it)."""
        if not (
            self.d.name == "postgresql"
            and base is None
            and self.cols.stored_body
            and isinstance(node, ast.Compare)
            and node.elementwise
            and node.op == "eq"
            and isinstance(node.field, ast.Field)
            and node.field.path
            and isinstance(node.value, str | int | float)
        ):
            return None
        path, value = node.field.path, node.value
        if self.defaults_reach(path) and not self._default_never_equals(path, value):
            return None  # documents relying on a default may match too

        def nested(leaf: Any) -> Any:
            for part in reversed(path):
                leaf = {part: leaf}
            return leaf

        body = self.cols.body
        in_array = body.op("@>", return_type=sa.Boolean)(self.d.literal(nested([value])))
        if path in self.cols.indexed and not isinstance(value, bool):
            # The field's own expression index (storage/indexes.py builds it from the same
            # expressions) has statistics, so PostgreSQL estimates the match count well and
            # can walk a listing in creation order; GIN containment is estimated at ~0.02 %
            # whatever the value, which made 1,000,000-document lists fetch every match.
            # The two branches exclude each other and each has an index in creation order
            # (the typed view's, and the field's "is an array" partial index), so the store
            # runs a listing as a UNION ALL of both (storage/union.py).
            views = self._indexed.get(path)
            if views is None:  # built once per field and compiler: a third of a list's CPU
                extracted = self.d.field(body, path)
                views = self._indexed[path] = {
                    **self.typed_views(extracted),
                    "array": self.is_array(extracted),
                }
            if isinstance(value, str):
                equal = views["string"] == sa.literal(value, sa.Text)
            else:
                equal = views["number"] == self.d.number_literal(value)
            return exclusive_or(equal, sa.and_(views["array"], in_array), key=path)
        return sa.or_(
            body.op("@>", return_type=sa.Boolean)(self.d.literal(nested(value))),
            in_array,
        )

    def _default_never_equals(self, path: tuple[str, ...], value: Any) -> bool:
        """Whether no document whose value at ``path`` comes from a default matches ``path ==
        value`` (equal, or an array holding it), so equality may read the stored body alone:
        a single default exactly at ``path``, neither ``value`` nor holding it."""
        reaching = [p for p in self.cols.defaults if p[: len(path)] == path or path[: len(p)] == p]
        if reaching != [path]:
            return False
        default = self.cols.defaults[path]
        held = default if isinstance(default, list) else []
        return not any(json_equal(value, candidate) for candidate in [default, *held])

    def is_array(self, x: ColumnElement[Any]) -> ColumnElement[bool]:
        """Whether a JSON value is an array: the predicate of an indexed field's partial index
        of array-valued documents (``storage/indexes.py``), repeated exactly in its equality."""
        return self.d.jtype(x) == _const("array")

    def typed_views(self, x: ColumnElement[Any]) -> dict[str, ColumnElement[Any]]:
        """A JSON value as a number and as a (C-collated) string, NULL when it is not one:
        the expressions ``x-datastore-indexes`` indexes (``storage/indexes.py``), which
        equality on an indexed field must repeat exactly for the index to apply."""
        return {"number": self.d.number(x), "string": self.d.collate(self.d.string(x))}

    def _in(self, x: ColumnElement[Any], node: ast.In) -> ColumnElement[bool]:
        """``$in`` with one ``IN (...)`` per JSON type of the values (a large list stays one
        short expression), Mongo-style over array elements; null also matches missing."""
        strings = [v for v in node.values if isinstance(v, str)]
        numbers = [v for v in node.values if json_type_name(v) == "number"]
        booleans = [v for v in node.values if isinstance(v, bool)]
        others = [v for v in node.values if json_type_name(v) in ("object", "array")]
        with_null = any(v is None for v in node.values)

        def scalar(e: ColumnElement[Any]) -> ColumnElement[bool]:
            tests: list[ColumnElement[bool]] = []
            if strings:
                tests.append(self.d.string(e).in_(strings))
            if numbers:
                tests.append(self.d.number(e).in_([self.d.number_literal(n) for n in numbers]))
            if booleans:
                tests.append(self.d.boolean(e).in_(booleans))
            tests.extend(self.d.equals(e, v) for v in others)
            return sa.or_(sa.false(), *tests)

        clauses = [self._any(x, scalar)] if strings or numbers or booleans or others else []
        if with_null:
            clauses.append(self._compare(x, ast.Compare(node.field, "eq", None)))
        return sa.or_(sa.false(), *clauses)

    def _safe_equals(self, x: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
        return _safe(self.d.equals(x, value))

    def _contains(self, x: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
        select, element = self.d.elements(x)
        return select.where(self._safe_equals(element, value)).exists()

    def _any(self, x: ColumnElement[Any], test: Any) -> ColumnElement[bool]:
        select, element = self.d.elements(x)
        return sa.or_(test(x), select.where(test(element)).exists())

    def _scalar_compare(
        self, x: ColumnElement[Any], op: str, value: Any, *, booleans: bool = True
    ) -> ColumnElement[bool]:
        kind = json_type_name(value)
        if op == "eq":
            return self.d.equals(x, value)
        if op == "ne":
            return sa.not_(_safe(self.d.equals(x, value)))
        if kind == "number":
            typed, bound = self.d.number(x), self.d.number_literal(value)
        elif kind == "string":
            typed, bound = self.d.collate(self.d.string(x)), sa.literal(value, sa.Text)
        elif kind == "boolean" and booleans:
            typed, bound = self.d.boolean(x), sa.literal(value, sa.Boolean)
        else:
            return sa.false()
        return _RANGE[op](typed, bound)

    def _compare(
        self, x: ColumnElement[Any], node: ast.Compare, *, top_level: bool = False
    ) -> ColumnElement[bool]:
        op, value = node.op, node.value
        if not node.elementwise:
            strict = self._scalar_compare(x, op, value, booleans=False)
            return sa.and_(x.is_not(None), strict)
        if op == "ne":
            return sa.not_(_safe(self._compare(x, ast.Compare(node.field, "eq", value))))
        if op == "eq" and value is None:
            return sa.or_(x.is_(None), self.d.jtype(x) == "null", self._contains(x, None))
        if top_level and self._indexed_range(node):
            # The value's typed view (indexed) or an array with an element in range: the
            # branches exclude each other (a typed view is NULL for an array), and the store
            # reads each from its index (storage/union.py); as a plain OR, the EXISTS kept
            # PostgreSQL off the index, so range + sort scanned the collection.
            select, element = self.d.elements(x)
            assert isinstance(node.field, ast.Field)
            sort = [column for column, _ in self.sort_columns(ast.SortKey(node.field))]
            rank = sort[0]
            return exclusive_or(
                sa.and_(self._scalar_compare(x, op, value), self._in_sort_order(node, sort)),
                sa.and_(
                    self.is_array(x),
                    rank == _const(_RANK["array"]),  # implied; bounds a sort-index scan
                    select.where(self._scalar_compare(element, op, value)).exists(),
                ),
                key=node.field.path,
            )
        return self._any(x, lambda e: self._scalar_compare(e, op, value))

    def _in_sort_order(
        self, node: ast.Compare, sort: list[ColumnElement[Any]]
    ) -> ColumnElement[bool]:
        """The range of ``node`` (a number or string) restated on the field's sort columns
        ``sort``: its type's rank, then its coalesced view. Implied by the typed comparison,
        it lets the field's sort index bound a scan; without it a listing sorted by the field
        walked the sort index from one end past every row out of range (134 ms at 100,000
        documents)."""
        rank, number, string, _ = sort
        bound: ColumnElement[Any]
        if isinstance(node.value, str):
            typed, kind, bound = string, "string", sa.literal(node.value, sa.Text)
        else:
            typed, kind, bound = number, "number", self.d.number_literal(node.value)
        return sa.and_(rank == _const(_RANK[kind]), _RANGE[node.op](typed, bound))

    def _indexed_range(self, node: ast.Compare) -> bool:
        """A range comparison of a number or string with an ``x-datastore-indexes`` field
        read straight from the stored body (no default in between) on PostgreSQL."""
        path = node.field.path if isinstance(node.field, ast.Field) else ()
        return (
            self.d.name == "postgresql"
            and self.cols.stored_body
            and node.op in ("gt", "gte", "lt", "lte")
            and json_type_name(node.value) in ("number", "string")
            and path in self.cols.indexed
            and not self.defaults_reach(path)
        )

    def _compare_exprs(
        self, left: ColumnElement[Any], op: str, right: ColumnElement[Any]
    ) -> ColumnElement[bool]:
        if op == "eq":
            return self.d.json_equal(left, right)
        if op == "ne":
            return sa.not_(_safe(self._compare_exprs(left, "eq", right)))
        compare = _RANGE[op]
        return sa.or_(
            _safe(compare(self.d.number(left), self.d.number(right))),
            _safe(
                compare(self.d.collate(self.d.string(left)), self.d.collate(self.d.string(right)))
            ),
        )

    def _source(self, node: ast.Node) -> ColumnElement[bool]:
        if isinstance(node, ast.Exists):
            assert isinstance(node.field, ast.Source)
            column = self.cols.sources[node.field.name]
            return column.is_not(None) if node.exists else column.is_(None)
        if isinstance(node, ast.In):
            return sa.or_(
                sa.false(),
                *[_safe(self._source(ast.Compare(node.field, "eq", v))) for v in node.values],
            )
        if isinstance(node, ast.StringMatch | ast.Regex):
            assert isinstance(node.field, ast.Source)
            column = self._source_text(node.field.name)
            if isinstance(node, ast.Regex):
                return self.d.regex(column, node.pattern, node.flags)
            if node.kind == "prefix":
                return column.startswith(node.value, autoescape=True)
            return column.endswith(node.value, autoescape=True)
        if not isinstance(node, ast.Compare) or not isinstance(node.field, ast.Source):
            raise BadRequest("This condition cannot be applied to a source property.")
        name, op, value = node.field.name, node.op, node.value
        if not node.elementwise:
            return self._source_as_rules_see(name, op, value)
        column = self.cols.sources[name]
        if name in _DATETIME_SOURCES:
            moment = _as_datetime(value)
            if moment is None:
                return sa.true() if op == "ne" else sa.false()
            bound: Any = sa.literal(moment, column.type)
        elif name in _TEXT_SOURCES:
            if name == "$extends" and value in (None, "") and op in ("eq", "ne"):
                missing = sa.or_(column.is_(None), column == "")
                return missing if op == "eq" else sa.not_(missing)
            if not isinstance(value, str):
                return sa.true() if op == "ne" else sa.false()
            column = self.d.collate(column)
            bound = sa.literal(value, sa.Text)
        else:
            raise BadRequest(f"{name} cannot be filtered on.")
        return _COMPARE[op](column, bound)

    def _source_as_rules_see(self, name: str, op: str, value: Any) -> ColumnElement[bool]:
        """A rule's comparison of a source with a known value: the string GET shows against
        the value as JSON values (a datetime is text here, never an instant)."""
        if not isinstance(value, str):
            return sa.true() if op == "ne" else sa.false()
        shown = self.d.collate(self.source_as_shown(name))
        return _COMPARE[op](shown, sa.literal(value, sa.Text))

    def _source_text(self, name: str) -> ColumnElement[Any]:
        if name in _TEXT_SOURCES:
            return self.cols.sources[name]
        raise BadRequest(f"{name} is not a text property.")

    # -- sorting --------------------------------------------------------------------------

    def sort_columns(self, key: ast.SortKey) -> list[tuple[ColumnElement[Any], bool]]:
        """(column expression, descending) pairs that order by ``key``; none is ever NULL.
        Built once per key and compiler (building them was a third of a sorted page's CPU)."""
        columns = self._sorts.get(key)
        if columns is None:
            columns = self._sorts[key] = self._sort_columns(key)
        return list(columns)

    def _sort_columns(self, key: ast.SortKey) -> list[tuple[ColumnElement[Any], bool]]:
        descending = key.descending
        if isinstance(key.field, ast.Source):
            column = self.cols.sources[key.field.name]
            if key.field.name in _TEXT_SOURCES:
                column = self.d.collate(sa.func.coalesce(column, ""))
            return [(column, descending)]
        # Constants are written into the SQL, not bound: the sort index of an indexed field
        # (storage/indexes.py) matches only an identical expression, and a generic plan (see
        # storage/engine.py) sees bound values as unknowns; with them bound, page 500 of a
        # sorted listing became a sequential scan (26 s on 1,000,000 documents).
        x = self.value(key.field)
        jtype = self.d.jtype(x)
        rank = sa.case(
            *[(jtype == _const(name), _const(value)) for name, value in _RANK.items() if value],
            else_=_const(0),
        )
        return [
            (rank, descending),
            (sa.func.coalesce(self.d.number(x), _const(0)), descending),
            (self.d.collate(sa.func.coalesce(self.d.string(x), _const(""))), descending),
            (
                sa.func.coalesce(
                    sa.case((self.d.boolean(x), _const(1)), else_=_const(0)), _const(0)
                ),
                descending,
            ),
        ]

    def sort_keys(self, keys: Sequence[ast.SortKey]) -> list[tuple[ColumnElement[Any], bool]]:
        """(column expression, descending) pairs of ``keys`` in order (the caller appends
        creation order)."""
        return [column for key in keys for column in self.sort_columns(key)]

    def order_by(self, keys: Sequence[ast.SortKey]) -> list[ColumnElement[Any]]:
        """The ORDER BY expressions of ``keys`` (the caller appends creation order)."""
        return [c.desc() if desc else c.asc() for c, desc in self.sort_keys(keys)]


def _const(value: int | str) -> ColumnElement[Any]:
    """A constant of the compiler's own (a type name, a rank) written into the SQL."""
    if isinstance(value, int):
        return sa.literal_column(str(int(value)), sa.Integer)
    assert "'" not in value
    return sa.literal_column(f"'{value}'", sa.Text)


def _as_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):  # 9999-12-31T23:59:59-14:00 is past year 9999 in UTC
        return None


def compile_filter(node: ast.Node, cols: DocumentColumns, dialect: str) -> ColumnElement[bool]:
    """A query tree as a WHERE expression for ``dialect``."""
    return Compiler(cols, dialect).filter(node)


def compile_sort(
    keys: Sequence[ast.SortKey], cols: DocumentColumns, dialect: str
) -> list[ColumnElement[Any]]:
    """Sort keys as ORDER BY expressions (creation order is the caller's tie-break)."""
    return Compiler(cols, dialect).order_by(keys)


def effective_body(dialect: str) -> ColumnElement[Any]:
    """The body with inherited values (``$extends``), for documents that extend another:
    every top-level property the document does not set (missing or null) comes from its nearest
    ancestor that sets it. Correlated subqueries over the lineage closure table, evaluated only
    for documents that extend something (others use the stored body as it is)."""
    from sqlalchemy.dialects.postgresql import aggregate_order_by

    from datastore.storage.tables import documents, lineage

    ancestor = documents.alias("ancestor")
    merged: ColumnElement[Any]
    if dialect == "postgresql":
        entry = sa.func.jsonb_each(ancestor.c.body).table_valued("key", "value").alias("entry")
        own = sa.func.jsonb_each(documents.c.body).table_valued("key", "value").alias("own")
        chain = (
            sa.select(entry.c.key, entry.c.value, lineage.c.depth)
            .select_from(lineage)
            .join(ancestor, ancestor.c.pk == lineage.c.ancestor_pk)
            .join(entry, sa.true())
            .where(lineage.c.descendant_pk == documents.c.pk)
            .correlate(documents)
            .union_all(sa.select(own.c.key, own.c.value, sa.literal(0)).correlate(documents))
            .subquery("chain")
        )
        # Per key the last value aggregated wins: nulls first, then non-nulls from the
        # farthest ancestor to the document itself.
        merged = (
            sa.select(
                sa.func.jsonb_object_agg(
                    chain.c.key,
                    aggregate_order_by(
                        chain.c.value,
                        (sa.func.jsonb_typeof(chain.c.value) != "null").asc(),
                        chain.c.depth.desc(),
                    ),
                )
            )
            .correlate(documents)
            .scalar_subquery()
        )
        merged = sa.func.coalesce(merged, sa.cast(sa.literal("{}"), JSONB))
    else:
        inherited = (
            sa.select(sa.func.json_inherit(ancestor.c.body, lineage.c.depth))
            .select_from(lineage)
            .join(ancestor, ancestor.c.pk == lineage.c.ancestor_pk)
            .where(lineage.c.descendant_pk == documents.c.pk)
            .correlate(documents)
            .scalar_subquery()
        )
        merged = sa.func.json_overlay(documents.c.body, inherited)
    return sa.case((documents.c.extends.is_(None), documents.c.body), else_=merged)


_COMPILERS: dict[tuple[bytes, bool, str, frozenset[tuple[str, ...]]], Compiler] = {}


def compiler_for(
    defaults: Mapping[tuple[str, ...], Any] | None,
    *,
    inherits: bool,
    dialect: str,
    indexed: frozenset[tuple[str, ...]] = frozenset(),
) -> Compiler:
    """The compiler of a collection's documents, shared by every request that has the same
    defaults, inheritance, indexes and backend (its sort expressions are built once)."""
    key = (
        orjson.dumps(sorted((defaults or {}).items()), option=orjson.OPT_SORT_KEYS),
        inherits,
        dialect,
        indexed,
    )
    compiler = _COMPILERS.get(key)
    if compiler is None:
        if len(_COMPILERS) > 1024:
            _COMPILERS.clear()
        cols = document_columns(defaults, inherits=inherits, dialect=dialect, indexed=indexed)
        compiler = _COMPILERS[key] = Compiler(cols, dialect)
    return compiler


def document_columns(
    defaults: Mapping[tuple[str, ...], Any] | None = None,
    *,
    inherits: bool = False,
    dialect: str = "",
    indexed: frozenset[tuple[str, ...]] = frozenset(),
) -> DocumentColumns:
    """The compiler's view of the ``documents`` table (``inherits``: with inherited values)."""
    from datastore.storage.tables import documents

    return DocumentColumns(
        body=effective_body(dialect) if inherits else documents.c.body,
        stored_body=not inherits,
        sources={
            "$id": documents.c.doc_id,
            "$createdDatetime": documents.c.created_at,
            "$updatedDatetime": documents.c.updated_at,
            "$extends": documents.c.extends,
        },
        defaults=dict(defaults or {}),
        indexed=indexed,
    )
