"""The Squiz dialect: ``filters=``, ``sort=`` and ``page[...]`` parameters.

``filters`` grammar (``;`` is AND and binds tighter than ``,`` which is OR; parentheses group)::

    expr      := and ("," and)*
    and       := unit (";" unit)*
    unit      := "(" expr ")" | condition
    condition := "document." path op value
    op        := "===" | "!==" | ">=" | "<=" | ">" | "<" | "@>" | "<@"
    value     := quoted string | "[" value ("," value)* "]" | bare text up to ; , ) or ]

Values are typed by the property's schema type (a string property keeps ``10`` as the string
"10"); without a schema type, ``true``/``false``/``null`` and numbers are recognised and quoted
text is always a string. ``@>`` means the array property holds every listed value, ``<@`` that
every element of it is one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from datastore.errors import BadRequest, InvalidParam
from datastore.jsonvalues import query_integer
from datastore.query import ast
from datastore.query.mongo import field_path

TypeLookup = Callable[[tuple[str, ...]], tuple[str, ...] | None]
SOURCES = {
    "$id": "$id",
    "$createdDatetime": "$createdDatetime",
    "$updatedDatetime": "$updatedDatetime",
    "$extends": "$extends",
}
_OPS: dict[str, str] = {
    "===": "eq",
    "!==": "ne",
    ">=": "gte",
    "<=": "lte",
    ">": "gt",
    "<": "lt",
    "@>": "contains",
    "<@": "within",
}
_OP_ORDER = ("===", "!==", ">=", "<=", "@>", "<@", ">", "<")
MAX_FILTER_LENGTH = 4000
MAX_DEPTH = 16
"""Deepest nesting of parentheses (1,000 of them exhausted the parser's stack: a 500)."""


def _bad(name: str, reason: str) -> BadRequest:
    return BadRequest("The filter is not valid.", invalid_params=[InvalidParam(name, reason)])


class _FilterParser:
    def __init__(self, text: str, types: TypeLookup) -> None:
        self.text = text
        self.types = types
        self.pos = 0
        self.depth = 0

    def fail(self, reason: str) -> BadRequest:
        return _bad("filters", f"{reason} at character {self.pos + 1}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def parse(self) -> ast.Node:
        if not self.text.strip():
            raise _bad("filters", "is empty")
        node = self.expr()
        if self.pos != len(self.text):
            raise self.fail(f"unexpected {self.peek()!r}")
        return node

    def expr(self) -> ast.Node:
        items = [self.conjunction()]
        while self.peek() == ",":
            self.pos += 1
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else ast.Or(tuple(items))

    def conjunction(self) -> ast.Node:
        items = [self.unit()]
        while self.peek() == ";":
            self.pos += 1
            items.append(self.unit())
        return items[0] if len(items) == 1 else ast.And(tuple(items))

    def unit(self) -> ast.Node:
        if self.peek() == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.fail(f"parentheses nest deeper than {MAX_DEPTH}")
            self.pos += 1
            node = self.expr()
            if self.peek() != ")":
                raise self.fail("missing )")
            self.pos += 1
            self.depth -= 1
            return node
        return self.condition()

    def condition(self) -> ast.Node:
        if not self.text.startswith("document.", self.pos):
            raise self.fail("expected document.<property>")
        self.pos += len("document.")
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in "=!<>@;,()":
            self.pos += 1
        name = self.text[start : self.pos].strip()
        if not name:
            raise self.fail("expected a property name")
        op = next((o for o in _OP_ORDER if self.text.startswith(o, self.pos)), None)
        if op is None:
            raise self.fail("expected an operator (=== !== > < >= <= @> <@)")
        self.pos += len(op)
        path = field_path(name, "filters")
        if len(path) == 1 and path[0] in SOURCES:
            field: ast.Operand = ast.Source(SOURCES[path[0]])
            kinds: tuple[str, ...] | None = ("string",)
        else:
            field = ast.Field(path)
            kinds = self.types(path)
        if op in ("@>", "<@"):
            values = self.list_value(self.item_types(path))
            return ast.ArrayAll(field, values) if op == "@>" else ast.ArrayWithin(field, values)
        value = self.value(kinds, name)
        return ast.Compare(field, _OPS[op], value)  # type: ignore[arg-type]

    def item_types(self, path: tuple[str, ...]) -> tuple[str, ...] | None:
        return self.types((*path, "[]"))

    def list_value(self, kinds: tuple[str, ...] | None) -> tuple[Any, ...]:
        if self.peek() != "[":
            raise self.fail("@> and <@ take a list like [a,b]")
        self.pos += 1
        values: list[Any] = []
        while True:
            if self.peek() == "]" and not values:
                break
            values.append(self.value(kinds, "value"))
            if self.peek() == ",":
                self.pos += 1
                continue
            break
        if self.peek() != "]":
            raise self.fail("missing ]")
        self.pos += 1
        return tuple(values)

    def value(self, kinds: tuple[str, ...] | None, name: str) -> Any:
        char = self.peek()
        if char in ("'", '"'):
            return self.quoted(char)
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ";,)]":
            self.pos += 1
        raw = self.text[start : self.pos].strip()
        return typed_value(raw, kinds, name, self.fail)

    def quoted(self, quote: str) -> str:
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if char == quote:
                self.pos += 1
                return "".join(out)
            out.append(char)
            self.pos += 1
        raise self.fail("unterminated string")


def typed_value(
    raw: str, kinds: tuple[str, ...] | None, name: str, fail: Callable[[str], BadRequest]
) -> Any:
    """A bare filter value, typed by the property's schema types when known."""
    if raw == "null" and (kinds is None or "null" in kinds):
        return None
    if kinds:
        if "string" in kinds:
            return raw
        if "boolean" in kinds and raw in ("true", "false"):
            return raw == "true"
        if "integer" in kinds or "number" in kinds:
            number = _number(raw)
            if number is None:
                raise fail(f"{name} expects a number, got {raw[:40]!r}")
            return number
        if "boolean" in kinds:
            raise fail(f"{name} expects true or false, got {raw[:40]!r}")
    if raw in ("true", "false"):
        return raw == "true"
    number = _number(raw)
    return raw if number is None else number


def _number(raw: str) -> int | float | None:
    try:
        number = float(raw)
    except ValueError:
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    if number.is_integer() and "." not in raw and "e" not in raw.lower():
        return query_integer(int(raw))
    return number


def parse_filters(text: str, types: TypeLookup) -> ast.Node:
    """The ``filters`` parameter as a query tree; raises BadRequest with the position."""
    if len(text) > MAX_FILTER_LENGTH:
        raise _bad("filters", f"may be at most {MAX_FILTER_LENGTH} characters long")
    return _FilterParser(text, types).parse()


def parse_sort(text: str) -> tuple[ast.SortKey, ...]:
    """``+document.a,-document.$createdDatetime`` → sort keys; raises BadRequest."""
    keys = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        descending = part.startswith("-")
        name = part.lstrip("+-").strip()
        if not name.startswith("document."):
            raise _bad("sort", f"{part!r} must look like +document.<property> or -document.<...>")
        path = field_path(name[len("document.") :], "sort")
        if len(path) == 1 and path[0] in SOURCES:
            keys.append(ast.SortKey(ast.Source(SOURCES[path[0]]), descending))
        else:
            keys.append(ast.SortKey(ast.Field(path), descending))
    if not keys:
        raise _bad("sort", "names no property")
    return tuple(keys)


@dataclass(frozen=True)
class PageRequest:
    """``page[size]`` and the ``page[after]`` / ``page[before]`` cursors (``page[v]`` is the
    pagination version: 2, or 1 as an alias; both page with keyset cursors)."""

    size: int
    after: str | None = None
    before: str | None = None
    version: str = "2"


def parse_page(
    params: Mapping[str, str], *, default_size: int, max_size: int
) -> PageRequest | None:
    """The paging parameters, or None when the request does not ask for pages."""
    keys = {k for k in params if k.startswith("page[")}
    if not keys:
        return None
    unknown = keys - {"page[size]", "page[after]", "page[before]", "page[v]"}
    if unknown:
        raise _bad(sorted(unknown)[0], "is not a paging parameter")
    size = default_size
    if "page[size]" in params:
        raw = params["page[size]"]
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= max_size:
            raise _bad("page[size]", f"must be a whole number from 1 to {max_size}")
        size = int(raw)
    after, before = params.get("page[after]"), params.get("page[before]")
    if after is not None and before is not None:
        raise _bad("page[before]", "cannot be combined with page[after]")
    version = params.get("page[v]", "2")
    if version not in ("1", "2"):
        raise _bad("page[v]", "must be 1 or 2")
    for name, cursor in (("page[after]", after), ("page[before]", before)):
        if cursor is not None and not cursor:
            raise _bad(name, "must be a cursor from a links.next or links.prev URL")
    return PageRequest(size, after, before, version)
