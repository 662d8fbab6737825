"""What the compiler asks of a backend: a JSON value's typed views, literals, array elements,
regular expressions; one subclass per backend (``postgresql.py``, ``sqlite.py``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
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
