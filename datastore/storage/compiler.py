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

What differs per backend (typed views, literals, array elements, regular expressions) is each
dialect's (``storage/dialects/``); requests reach the compiler as neutral selections, through
``storage/plans.py``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from datastore.errors import BadRequest
from datastore.jsonvalues import json_equal, with_defaults
from datastore.jsonvalues import json_type as json_type_name
from datastore.query import ast
from datastore.query.filterable import DATETIME_SOURCES, TEXT_SOURCES
from datastore.storage.dialects import dialect_for
from datastore.storage.dialects.base import const
from datastore.storage.union import exclusive_or

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
    """Fields with ``x-datastore-indexes`` expression indexes (both backends)."""


def _false() -> ColumnElement[bool]:
    return sa.false()


def _safe(expression: ColumnElement[Any]) -> ColumnElement[bool]:
    return sa.func.coalesce(expression, sa.false())


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
        if name in DATETIME_SOURCES:
            return self.d.datetime_text(column)
        if name == "$extends":
            return sa.func.coalesce(column, "")
        return column

    def _leaf(self, node: ast.Node, base: ColumnElement[Any] | None) -> ColumnElement[bool]:
        assert not isinstance(node, ast.And | ast.Or | ast.Not | ast.Const | ast.CompareFields)
        assert isinstance(node.field, ast.Field)
        fast = self._containment(node, base)
        if fast is None:
            fast = self._indexed_equality(node, base)
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
                return self._any(x, lambda e: self.d.starts_with(self.d.string(e), value))
            return self._any(x, lambda e: self.d.ends_with(self.d.string(e), value))
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

    def _stored_equality(
        self, node: ast.Node, base: ColumnElement[Any] | None
    ) -> tuple[tuple[str, ...], str | int | float] | None:
        """The field path and value of an elementwise equality of a document field with a
        scalar that the stored body alone answers (no inheritance, no array element as base,
        no default that could match): what both backends' indexable forms of equality need.
        None for anything else."""
        if not (
            base is None
            and self.cols.stored_body
            and isinstance(node, ast.Compare)
            and node.elementwise
            and node.op == "eq"
            and isinstance(node.field, ast.Field)
            and isinstance(node.value, str | int | float)
        ):
            return None
        path, value = node.field.path, node.value
        if self.defaults_reach(path) and not self._default_never_equals(path, value):
            return None  # documents relying on a default may match too
        return path, value

    def _containment(
        self, node: ast.Node, base: ColumnElement[Any] | None
    ) -> ColumnElement[bool] | None:
        """Scalar equality as GIN-indexable containment on PostgreSQL:
        ``body @> {"a": v} OR body @> {"a": [v]}`` (equal, or an array holding it)."""
        found = self._stored_equality(node, base) if self.d.equality_by_containment else None
        if found is None or not found[0]:
            return None
        path, value = found

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
            return exclusive_or(
                self._typed_equal(path, value),
                sa.and_(self._views(path)["array"], in_array),
                key=path,
            )
        return sa.or_(
            body.op("@>", return_type=sa.Boolean)(self.d.literal(nested(value))),
            in_array,
        )

    def _views(self, path: tuple[str, ...]) -> dict[str, ColumnElement[Any]]:
        """An indexed field's typed views and "is an array" test, over the stored body: the
        expressions of its indexes. Built once per field and compiler (a third of a list's
        CPU)."""
        views = self._indexed.get(path)
        if views is None:
            extracted = self.d.field(self.cols.body, path)
            views = self._indexed[path] = {
                **self.typed_views(extracted),
                "array": self.is_array(extracted),
            }
        return views

    def _typed_equal(self, path: tuple[str, ...], value: str | int | float) -> ColumnElement[bool]:
        """The indexed field's typed view of ``value``'s type equals ``value``."""
        views = self._views(path)
        if isinstance(value, str):
            return views["string"] == sa.literal(value, sa.Text)
        return views["number"] == self.d.number_literal(value)

    def _indexed_equality(
        self, node: ast.Node, base: ColumnElement[Any] | None
    ) -> ColumnElement[bool] | None:
        """Scalar equality on an ``x-datastore-indexes`` field on SQLite (no containment
        there): the typed view equals the value, or the field is an array holding it. The
        branches exclude each other and each has an index in creation order, so a listing
        runs as a UNION ALL of both (``storage/union.py``), as on PostgreSQL."""
        found = self._stored_equality(node, base) if self.d.equality_by_typed_view else None
        if found is None or found[0] not in self.cols.indexed or isinstance(found[1], bool):
            return None
        path, value = found
        select, element = self.d.elements(self.d.field(self.cols.body, path))
        in_array = select.where(self.d.equals(element, value)).exists()
        return exclusive_or(
            self._typed_equal(path, value),
            sa.and_(self._views(path)["array"], in_array),
            key=path,
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
        return self.d.has_type(x, "array")

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
                    rank == const(_RANK["array"]),  # implied; bounds a sort-index scan
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
        return sa.and_(rank == const(_RANK[kind]), _RANGE[node.op](typed, bound))

    def _indexed_range(self, node: ast.Compare) -> bool:
        """A range comparison of a number or string with an ``x-datastore-indexes`` field
        read straight from the stored body (no default in between)."""
        path = node.field.path if isinstance(node.field, ast.Field) else ()
        return (
            self.cols.stored_body
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
                return self.d.starts_with(column, node.value)
            return self.d.ends_with(column, node.value)
        if not isinstance(node, ast.Compare) or not isinstance(node.field, ast.Source):
            raise BadRequest("This condition cannot be applied to a source property.")
        name, op, value = node.field.name, node.op, node.value
        if not node.elementwise:
            return self._source_as_rules_see(name, op, value)
        column = self.cols.sources[name]
        if name in DATETIME_SOURCES:
            moment = ast.as_datetime(value)
            if moment is None:
                return sa.true() if op == "ne" else sa.false()
            bound: Any = sa.literal(moment, column.type)
        elif name in TEXT_SOURCES:
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
        if name in TEXT_SOURCES:
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
            if key.field.name in TEXT_SOURCES:
                column = self.d.collate(sa.func.coalesce(column, ""))
            return [(column, descending)]
        # Constants are written into the SQL, not bound: the sort index of an indexed field
        # (storage/indexes.py) matches only an identical expression, and a generic plan (see
        # storage/engine.py) sees bound values as unknowns; with them bound, page 500 of a
        # sorted listing became a sequential scan (26 s on 1,000,000 documents).
        x = self.value(key.field)
        rank = self.d.type_rank(x, _RANK)
        return [
            (rank, descending),
            (sa.func.coalesce(self.d.number(x), const(0)), descending),
            (self.d.collate(sa.func.coalesce(self.d.string(x), const(""))), descending),
            (
                sa.func.coalesce(sa.case((self.d.boolean(x), const(1)), else_=const(0)), const(0)),
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


def effective_body(dialect: str) -> ColumnElement[Any]:
    """The body with inherited values (``$extends``), for documents that extend another:
    every top-level property the document does not set (missing or null) comes from its nearest
    ancestor that sets it. Correlated subqueries over the lineage closure table, evaluated only
    for documents that extend something (others use the stored body as it is)."""
    from datastore.storage.tables import documents, lineage

    merged = dialect_for(dialect).effective_body(documents, lineage)
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
