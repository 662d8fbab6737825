"""What storage asks of a backend: for the compiler, a JSON value's typed views, literals,
array elements, regular expressions, inherited values; for the stores, upserts, row locks,
transaction locks and the index shapes the planner uses. One subclass per backend
(``postgresql.py``, ``sqlite.py``): no other module of the package branches on a backend's
name (``tests/test_layers.py``)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement


def const(value: int | str) -> ColumnElement[Any]:
    """A constant of the compiler's own (a type name, a rank) written into the SQL."""
    if isinstance(value, int):
        return sa.literal_column(str(int(value)), sa.Integer)
    assert "'" not in value
    return sa.literal_column(f"'{value}'", sa.Text)


class Dialect:
    """The typed views of a JSON expression; one subclass per backend."""

    name = ""
    row_value_ranges = True
    """Whether the planner bounds an index scan by a row-value comparison of indexed
    expressions (``(e1, e2, pk) > (v1, v2, p)``); keyset pages are written for it."""

    equality_by_containment = False
    """Scalar equality is answered by containment of the stored body, which a GIN index
    serves (PostgreSQL)."""
    equality_by_typed_view = False
    """Scalar equality on an ``x-datastore-indexes`` field is answered by its typed view, which
    an expression index serves (SQLite, which has no containment)."""
    index_keeps_collection = False
    """A collection's partial index keeps the ``collection`` column: SQLite's planner counts
    the equality columns an index matches, and with one fewer than the collection's own index
    it scanned the collection instead."""
    index_array_by_type = False
    """The index of a field's array branch has the field's type as a column too (SQLite
    preferred the collection's own index otherwise)."""
    naive_datetimes = False
    """Datetimes are stored without a zone (as UTC)."""
    notifications = False
    """Writers can wake other servers' listeners (PostgreSQL's LISTEN/NOTIFY); without, the
    change log is polled."""
    sequenced_changes = False
    """The change log's triggers append without a number; the sequencer numbers committed
    changes (``datastore_number_changes``, migration 0008). Without, the triggers number at
    the write (one writer at a time)."""

    def field(self, body: ColumnElement[Any], path: tuple[str, ...]) -> ColumnElement[Any]:
        raise NotImplementedError

    def literal(self, value: Any) -> ColumnElement[Any]:
        raise NotImplementedError

    def jtype(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        raise NotImplementedError

    def type_rank(self, x: ColumnElement[Any], ranks: Mapping[str, int]) -> ColumnElement[Any]:
        """The rank of a JSON value's type in a sort (``ranks`` by ``jtype`` name; 0 for a
        type not listed, or a missing value)."""
        jtype = self.jtype(x)
        return sa.case(
            *[(jtype == const(name), const(value)) for name, value in ranks.items() if value],
            else_=const(0),
        )

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
        return self.raw_type(x) == const(kind)

    def raw_type(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        """The backend's own type function of a JSON value (NULL when missing)."""
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

    def starts_with(self, text: ColumnElement[Any], prefix: str) -> ColumnElement[bool]:
        """Whether ``text`` starts with ``prefix``, case and all (``LIKE``, escaped)."""
        return text.startswith(prefix, autoescape=True)

    def ends_with(self, text: ColumnElement[Any], suffix: str) -> ColumnElement[bool]:
        """Whether ``text`` ends with ``suffix``, case and all (``LIKE``, escaped)."""
        return text.endswith(suffix, autoescape=True)

    def collate(self, text: ColumnElement[Any]) -> ColumnElement[Any]:
        return text

    # -- the stores' statements --------------------------------------------------------

    def insert(self, table: sa.Table) -> Any:
        """An INSERT into ``table`` that can be told ``on_conflict_do_nothing``."""
        raise NotImplementedError

    def for_update(self, query: sa.Select[Any], **options: Any) -> sa.Select[Any]:
        """``query`` locking the rows it reads until commit (``options`` as SQLAlchemy's
        ``with_for_update``). Unchanged where the backend has one writer at a time, which
        serialises the same writes."""
        return query

    def lock_transaction(self, conn: Connection, key: int) -> None:
        """Serialise the transactions that take ``key`` (see ``lock_key``), until each ends.
        Nothing to do where the backend has one writer at a time."""

    def indexable(self, path: tuple[str, ...]) -> bool:
        """Whether an expression index can hold the field at ``path``."""
        return True

    def existing_indexes(self, conn: Connection, names: list[str]) -> set[str]:
        """Which of ``names`` are indexes of the database (its current schema)."""
        raise NotImplementedError

    def drop_index_unless_busy(self, conn: Connection, name: str, wait_ms: int) -> bool:
        """Drop the index ``name`` if it exists, waiting at most ``wait_ms`` for the table's
        lock; False (nothing dropped) when the table stayed busy."""
        conn.execute(sa.text(f'DROP INDEX IF EXISTS "{name}"'))
        return True

    def effective_body(self, documents: sa.Table, lineage: sa.Table) -> ColumnElement[Any]:
        """The body with inherited values of a document that extends another (see
        ``storage.compiler.effective_body``)."""
        raise NotImplementedError


def lock_key(name: bytes) -> int:
    """A transaction lock's number for ``name`` (a signed 64-bit slice of its SHA-256)."""
    return int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)


def lineage_ancestor(ancestor: Any, lineage: Any) -> ColumnElement[bool]:
    """An ancestor joined to its lineage row; the space too, so that under Citus
    (distributed by space) the join stays on one shard."""
    return sa.and_(ancestor.c.pk == lineage.c.ancestor_pk, ancestor.c.space == lineage.c.space)


def lineage_of_document(lineage: Any, documents: Any) -> ColumnElement[bool]:
    """The lineage rows of the outer query's document (same pk and space)."""
    return sa.and_(lineage.c.descendant_pk == documents.c.pk, lineage.c.space == documents.c.space)
