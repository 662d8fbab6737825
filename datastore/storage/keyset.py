"""Keyset pages in SQL: "the rows after the cursor's row" in a listing's order.

A cursor (``query/cursor.py``) carries the values of the order's columns for one row. The rows
after it satisfy the lexicographic condition ``c1 ▷ v1 OR (c1 = v1 AND (c2 ▷ v2 OR (... pk >
p)))`` where ``▷`` is ``>`` for an ascending column and ``<`` for a descending one; "before"
flips every direction. ``kind`` tells the codec what each column holds, so a tampered value is
refused (400) before any SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from datastore.storage.dialects import dialect_for
from datastore.storage.union import exclusive_or

Column = tuple[ColumnElement[Any], bool]  # (expression, descending)


def kind(column_type: TypeEngine[Any]) -> str:
    """What an order column holds, as ``query.cursor.KINDS`` names it."""
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    if isinstance(column_type, sa.DateTime):
        return "datetime"
    if isinstance(column_type, sa.String):
        return "string"
    if isinstance(column_type, sa.Integer):  # SQLite's number column too: ints and floats
        return "integer"
    if isinstance(column_type, sa.Numeric):
        return "numeric"
    return "any"


def after(
    columns: Sequence[Column],
    values: Sequence[Any],
    *,
    backwards: bool = False,
    dialect: str = "postgresql",
) -> ColumnElement[bool]:
    """The rows strictly after (``backwards``: before) the row with ``values`` in the order of
    ``columns``. Each run of columns that go the same way is one row-value comparison, so when
    every column runs the same way this is a single one, which an index on those columns
    answers with a range scan. With mixed directions the first run that differs from the
    cursor's values decides: ``CASE WHEN r1 <> v1 THEN r1 ▷ v1 WHEN r2 <> v2 THEN r2 ▷ v2 ...
    ELSE false END`` (the last run ends with ``pk``, so only the cursor's own row is equal),
    flat however many runs there are: nesting ``r1 ▷ v1 OR (r1 = v1 AND (...))`` per column
    exhausted SQLAlchemy's recursion at 32 keys (a 500) and SQLite's parser stack at 16 (503).

    A backend whose planner cannot bound an index scan by a row value of indexed expressions
    (SQLite) gets ``expanded`` instead, for orders short enough to split."""
    if not dialect_for(dialect).row_value_ranges and len(columns) <= MAX_EXPANDED:
        return expanded(columns, values, backwards=backwards)
    runs = [(descending, *_row(run)) for descending, run in _runs(columns, values)]
    beyond: list[ColumnElement[bool]] = [
        row > bound if desc == backwards else row < bound for desc, row, bound in runs
    ]
    if len(runs) == 1:
        return beyond[0]
    decisions = [(row != bound, b) for (_, row, bound), b in zip(runs, beyond, strict=True)]
    condition: ColumnElement[bool] = sa.case(*decisions, else_=sa.false())
    return condition


def _runs(
    columns: Sequence[Column], values: Sequence[Any]
) -> list[tuple[bool, list[tuple[ColumnElement[Any], Any]]]]:
    """Consecutive columns of one direction, each with its value."""
    runs: list[tuple[bool, list[tuple[ColumnElement[Any], Any]]]] = []
    for (expression, descending), value in zip(columns, values, strict=True):
        if not runs or runs[-1][0] != descending:
            runs.append((descending, []))
        runs[-1][1].append((expression, value))
    return runs


def _row(run: list[tuple[ColumnElement[Any], Any]]) -> tuple[Any, Any]:
    """The columns of a run and their bound values: a row value, or one column alone."""
    bounds = [sa.literal(value, expression.type) for expression, value in run]
    if len(run) == 1:
        return run[0][0], bounds[0]
    return sa.tuple_(*[expression for expression, _ in run]), sa.tuple_(*bounds)


MAX_EXPANDED = 11
"""The longest order (two sort keys of a field, and ``pk``) ``after`` expands on a backend
without row-value index ranges; a longer one is a union of as many SELECTs, and reads the
collection anyway unless an index covers all its columns."""


def expanded(
    columns: Sequence[Column], values: Sequence[Any], *, backwards: bool = False
) -> ColumnElement[bool]:
    """The rows past the cursor's row as an exclusive OR of one branch per column: the columns
    before it equal to the cursor's values and it beyond its value. Each branch is equality on
    a prefix of the sort index's columns and a range on the next, which SQLite answers with an
    index range scan; the store runs the branches as a UNION ALL of ordered, limited SELECTs
    (``storage/union.py``). SQLite bounds a scan by a row value only over plain columns: with
    ``(c1, c2, pk) > (v1, v2, p)`` over expressions, page 500 read the 10,000 rows before it."""
    bounds = [
        sa.literal(value, expression.type)
        for (expression, _), value in zip(columns, values, strict=True)
    ]
    branches = []
    for n, (expression, descending) in enumerate(columns):
        equal = [columns[i][0] == bounds[i] for i in range(n)]
        beyond = expression > bounds[n] if descending == backwards else expression < bounds[n]
        branches.append(sa.and_(*equal, beyond))
    return exclusive_or(*branches) if len(branches) > 1 else branches[0]
