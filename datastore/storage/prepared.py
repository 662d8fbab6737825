"""Listing statements compiled once per shape: the SQL of a selection is built and compiled
the first time its shape is seen, and later requests of that shape only bind their values.

Building a listing's SQLAlchemy statement and looking it up in SQLAlchemy's compiled cache was
about half of a list request's CPU (the WHERE from the query tree, the UNION ALL of
``storage/union.py``, the cache key). A *shape* is the selection with its literal values taken
out: ``q={"category": "cat3"}`` and ``q={"category": "cat7"}`` have one shape. Each value taken
out is replaced by a ``Slot`` (a ``str``/``int``/``float`` subclass that still equals it, so the
compiler decides exactly as it would for the value); the statement compiled from the slotted
selection holds each slot, or a ``Computed`` value made from slots (a JSON literal, an exact
decimal), as a bound parameter. A later request of the shape fills the parameters from its own
values.

Only values the compiler passes through without deciding anything by them are taken out
(``slottable``): scalar comparison values of body fields no schema default reaches, ``$in``
lists, and keyset bounds. Everything else (sources, regular expressions, string prefixes,
defaults, limits, offsets) stays in the shape. As a guard against a value leaking into the SQL
as a constant, each shape is compiled twice, with the request's values and with different
ones: unless both compile to the same SQL and the same constants, the shape is not kept and
every request of it is compiled on its own (``Template`` is then None).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import orjson
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from datastore.errors import DatastoreError
from datastore.query import ast
from datastore.query.selection import CollectionFacts, Keyset, Rule, Selection


class Slot:
    """A value taken out of a selection: its position in the request's values."""

    at: int


class SlotStr(str, Slot):
    """A string value taken out of a selection (it equals the value)."""

    at: int


class SlotInt(int, Slot):
    """An integer value taken out of a selection."""

    at: int


class SlotFloat(float, Slot):
    """A float value taken out of a selection."""

    at: int


class SlotDecimal(Decimal, Slot):
    """A decimal value (a keyset bound of a number column) taken out of a selection."""

    at: int


class SlotDatetime(datetime, Slot):
    """A datetime value (a keyset bound of a datetime column) taken out of a selection."""

    at: int


def _slot_datetime(value: datetime) -> SlotDatetime:
    return SlotDatetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        value.tzinfo,
        fold=value.fold,
    )


_SLOT_TYPES: dict[type, Callable[[Any], Any]] = {
    str: SlotStr,
    int: SlotInt,
    float: SlotFloat,
    Decimal: SlotDecimal,
    datetime: _slot_datetime,
    SlotStr: SlotStr,
    SlotInt: SlotInt,
    SlotFloat: SlotFloat,
    SlotDecimal: SlotDecimal,
    SlotDatetime: _slot_datetime,
}


def slot(value: Any, at: int) -> Any:
    """``value`` as the slot at position ``at`` of the values (it equals the value), or
    ``value`` itself when its type is not taken out."""
    make = _SLOT_TYPES.get(type(value))
    if make is None:
        return value
    taken = make(value)
    taken.at = at
    return taken


@dataclass(frozen=True)
class Computed:
    """A bound value made from slots: ``make(*values of slots)``."""

    make: Callable[..., Any]
    slots: tuple[int, ...]

    def value(self, values: Sequence[Any]) -> Any:
        """The value for a request's ``values``."""
        return self.make(*[values[i] for i in self.slots])


def slots_in(value: Any) -> tuple[int, ...]:
    """The slots a JSON value holds (in a list, an object's values, or itself)."""
    if isinstance(value, Slot):
        return (value.at,)
    if isinstance(value, list | tuple):
        return tuple(i for item in value for i in slots_in(item))
    if isinstance(value, dict):
        return tuple(i for item in value.values() for i in slots_in(item))
    return ()


def json_text(value: Any) -> Any:
    """A JSON value as the text a JSON literal binds: the text, or (when the value holds
    slots) a ``Computed`` text that puts each request's values in their places."""
    slots = slots_in(value)
    if not slots:
        return orjson.dumps(value).decode()
    order = {at: n for n, at in enumerate(slots)}

    def render(*values: Any) -> str:
        return orjson.dumps(_filled(value, order, values)).decode()

    return Computed(render, slots)


def _filled(value: Any, order: dict[int, int], values: Sequence[Any]) -> Any:
    if isinstance(value, Slot):
        return values[order[value.at]]
    if isinstance(value, list | tuple):
        return [_filled(item, order, values) for item in value]
    if isinstance(value, dict):
        return {key: _filled(item, order, values) for key, item in value.items()}
    return value


def exact_number(value: int | float) -> Any:
    """A number as PostgreSQL should compare it: a float as the decimal of its shortest text
    (``Computed`` for a slot)."""
    if isinstance(value, float):
        if isinstance(value, Slot):
            return Computed(_decimal, (value.at,))
        return _decimal(value)
    return value


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


# -- taking values out -----------------------------------------------------------------------


class _Taker:
    """Replaces the slottable values of a selection with slots, collecting the values."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def take(self, value: Any) -> Any:
        taken = slot(value, len(self.values))
        if taken is not value:
            self.values.append(value)
        return taken

    def node(self, node: ast.Node, facts: CollectionFacts) -> ast.Node:
        if isinstance(node, ast.And | ast.Or):
            return replace(node, items=tuple(self.node(item, facts) for item in node.items))
        if isinstance(node, ast.Not):
            return replace(node, item=self.node(node.item, facts))
        if not _plain_field(node, facts):
            return node
        if isinstance(node, ast.Compare):
            return replace(node, value=self.take(node.value))
        if isinstance(node, ast.In):
            return replace(node, values=tuple(self.take(v) for v in node.values))
        return node


def _plain_field(node: ast.Node, facts: CollectionFacts) -> bool:
    """A comparison of a body field that no default reaches (the compiler decides by a value
    only where a default may stand in for it)."""
    field = getattr(node, "field", None)
    if not isinstance(field, ast.Field):
        return False
    path = field.path
    return not any(p[: len(path)] == path or path[: len(p)] == p for p in facts.default_paths or {})


def slotted(selection: Selection, facts: CollectionFacts) -> tuple[Selection, list[Any]]:
    """The selection with its slottable values replaced by slots, and those values."""
    taker = _Taker()
    access = selection.access
    if access is not None:
        access = Rule(taker.node(access.node, access.facts), access.facts)
    node = taker.node(selection.filter, facts)
    keyset = selection.keyset
    if keyset is not None:
        keyset = replace(keyset, values=tuple(taker.take(v) for v in keyset.values))
    return replace(selection, filter=node, access=access, keyset=keyset), taker.values


def shape(value: Any) -> Hashable:
    """A hashable image of a slotted selection: slots by type (and whether falsy), every other
    value as itself with its type."""
    if isinstance(value, Slot):
        return ("$slot", type(value).__name__, not value)
    if isinstance(value, CollectionFacts):
        return ("$facts", id(value))
    if is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, *[shape(getattr(value, f.name)) for f in fields(value)])
    if isinstance(value, tuple | list):
        return ("$seq", *[shape(item) for item in value])
    if isinstance(value, dict):
        return ("$json", orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
    return (type(value).__name__, value)


def _perturbed(values: Sequence[Any]) -> list[Any]:
    """Other values of the same types (and falsiness) as ``values``: a string with a suffix,
    a number moved by its position."""
    out: list[Any] = []
    for n, value in enumerate(values):
        if isinstance(value, datetime):
            out.append(value + timedelta(seconds=n + 1))
        elif isinstance(value, str):
            out.append(value + f"~{n}" if value else value)
        elif not value:
            out.append(value)
        elif isinstance(value, float):
            out.append(value * 1.5 + n + 1)
        else:
            out.append(value + n + 1)
    return out


def with_values(selection: Selection, values: Sequence[Any], *, slots: bool = True) -> Selection:
    """A slotted selection with other values in its slots (as slots, or as plain values)."""

    def swap(value: Any) -> Any:
        if isinstance(value, Slot):
            return slot(values[value.at], value.at) if slots else values[value.at]
        if isinstance(value, tuple):
            return tuple(swap(item) for item in value)
        if isinstance(value, Rule):
            return Rule(swap(value.node), value.facts)
        if isinstance(value, Keyset):
            return replace(value, values=swap(value.values))
        if is_dataclass(value) and not isinstance(value, type | CollectionFacts):
            return replace(value, **{f.name: swap(getattr(value, f.name)) for f in fields(value)})
        return value

    swapped = swap(selection)
    assert isinstance(swapped, Selection)
    return swapped


# -- templates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A compiled statement and how each of its parameters gets its value."""

    sql: str
    params: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]
    """(name, a constant or a ``Slot`` or a ``Computed``, how the driver gets the value)."""

    def bind(self, values: Sequence[Any]) -> dict[str, Any]:
        """The parameters for a request's values."""
        out = {}
        for name, spec, process in self.params:
            if isinstance(spec, Slot):
                value = values[spec.at]
            elif isinstance(spec, Computed):
                value = spec.value(values)
            else:
                out[name] = spec  # processed when the template was made
                continue
            out[name] = value if process is None else process(value)
        return out

    def compiled(self, values: Sequence[Any]) -> Compiled:
        """The statement for a request's values."""
        return Compiled(self.sql, {k: (v, None) for k, v in self.bind(values).items()})


@dataclass(frozen=True)
class Compiled:
    """A statement compiled for one request: its SQL, parameters (with how the driver gets
    each) and result column types."""

    sql: str
    raw: dict[str, tuple[Any, Callable[[Any], Any] | None]]

    @property
    def params(self) -> dict[str, Any]:
        """The parameters as the driver gets them (no slots may be left in them)."""
        return {
            name: value if process is None else process(value)
            for name, (value, process) in self.raw.items()
        }


def compile_statement(statement: ClauseElement, dialect: Dialect) -> Compiled:
    """``statement`` as SQL text of ``dialect``'s driver, with each parameter's value and how
    SQLAlchemy would convert it for the driver."""
    compiled = cast(
        SQLCompiler,
        statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True}),
    )
    raw: dict[str, tuple[Any, Callable[[Any], Any] | None]] = {}
    for name, value in compiled.params.items():
        bind = compiled.binds.get(name)
        process = (
            bind.type.dialect_impl(dialect).bind_processor(dialect) if bind is not None else None
        )
        raw[name] = (value, cast(Callable[[Any], Any] | None, process))
    return Compiled(compiled.string, raw)


def _is_spec(value: Any) -> bool:
    return isinstance(value, Slot | Computed)


def _template(first: Compiled, second: Compiled) -> Template | None:
    """The template two compilations of one shape agree on, or None when a value leaked into
    the SQL or into a constant."""
    if first.sql != second.sql or first.raw.keys() != second.raw.keys():
        return None
    params: list[tuple[str, Any, Callable[[Any], Any] | None]] = []
    for name, (a, process) in first.raw.items():
        b = second.raw[name][0]
        if isinstance(a, Slot) and isinstance(b, Slot) and a.at == b.at:
            params.append((name, _plain(a), process))
        elif isinstance(a, Computed) and isinstance(b, Computed) and a.slots == b.slots:
            params.append((name, a, process))
        elif _is_spec(a) or _is_spec(b) or type(a) is not type(b) or a != b:
            return None
        else:
            params.append((name, a if process is None else process(a), None))
    return Template(first.sql, tuple(params))


def _plain(slot: Slot) -> Slot:
    """A bare slot marker for a template (no request's value kept alive in it)."""
    marker = Slot()
    marker.at = slot.at
    return marker


class Templates:
    """Templates by shape, for one backend; the least recently used go past ``size``."""

    def __init__(self, dialect: Dialect, *, size: int = 512) -> None:
        self.dialect = dialect
        self.size = size
        self._entries: OrderedDict[Hashable, Template | None] = OrderedDict()
        self._lock = threading.Lock()
        self._facts: dict[int, CollectionFacts] = {}

    def _checked(
        self,
        first: Compiled,
        slotted_selection: Selection,
        values: list[Any],
        build: Callable[[Selection], ClauseElement],
    ) -> Template | None:
        """The template ``first`` makes, if a compilation with other values agrees with it;
        None when it does not, or when the other values are refused (a keyset bound moved
        past the 64-bit range, say): the request's own values were fine."""
        other = with_values(slotted_selection, _perturbed(values))
        try:
            second = compile_statement(build(other), self.dialect)
        except DatastoreError:
            return None
        return _template(first, second)

    def __len__(self) -> int:
        return len(self._entries)

    def compiled(
        self,
        key: Hashable,
        selection: Selection,
        facts: CollectionFacts,
        build: Callable[[Selection], ClauseElement],
    ) -> Compiled:
        """The statement ``build`` makes of ``selection``, from its shape's template when
        there is one. ``key`` names what else the statement depends on (its kind, space,
        collection)."""
        slotted_selection, values = slotted(selection, facts)
        full_key = (key, id(facts), shape(slotted_selection))
        with self._lock:
            found = full_key in self._entries
            template = self._entries.get(full_key)
            if found:
                self._entries.move_to_end(full_key)
        if template is not None:
            return template.compiled(values)
        if found:  # a shape that cannot be templated
            return compile_statement(build(selection), self.dialect)
        first = compile_statement(build(slotted_selection), self.dialect)
        template = self._checked(first, slotted_selection, values, build)
        with self._lock:
            self._entries[full_key] = template
            # The key holds the facts by id: keep them alive while a template names them.
            self._facts[id(facts)] = facts
            if selection.access is not None:
                self._facts[id(selection.access.facts)] = selection.access.facts
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        if template is None:
            return compile_statement(build(selection), self.dialect)
        return template.compiled(values)
