"""How SQLite is given a UNION of ordered, limited SELECTs (``storage/union.py``), registered
with SQLAlchemy's compiler for the ``sqlite`` dialect on import.

SQLite allows ORDER BY and LIMIT only at the end of a compound select, so each such member is
written as ``SELECT ... FROM (member)``. And its planner takes an ORDER BY term as satisfied by
an equality in the WHERE clause only when the term is a plain column: a branch fixing the
first sort column of an indexed field (``rank = 1``, a keyset branch's ``c1 = v1``) sorted
every row in range instead of reading the sort index in order. A member's ORDER BY leaves out
the terms its own top-level equalities fix, which orders its rows the same.

That choice is made when SQLAlchemy compiles a statement, and the compiled form is cached by
the statement's shape (bound values left out): it may depend only on what the shape holds.
The SQLite dialect writes JSON paths and keys as literal text for this (``sqlite.py``), so
two fields' expressions differ in shape, not in a value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import operators
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import (
    BinaryExpression,
    BooleanClauseList,
    ColumnElement,
    Grouping,
    UnaryExpression,
)
from sqlalchemy.sql.selectable import CompoundSelect, Select, SelectStatementGrouping


@compiles(CompoundSelect, "sqlite")
def _compound_select(element: CompoundSelect[Any], compiler: SQLCompiler, **kw: Any) -> str:
    if any(_ordered_or_limited(member) for member in element.selects):
        element = element._generate()
        element.selects = [
            _wrapped(_bare(member)) if _ordered_or_limited(member) else member
            for member in element.selects
        ]
    visit: Callable[..., str] = compiler.visit_compound_select  # SQLAlchemy's own rendering
    return visit(element, **kw)


def _wrapped(member: Select[Any]) -> Select[Any]:
    """``SELECT ... FROM (member)``, the member ordered only by the terms it does not fix."""
    fixed = _fixed(member.whereclause)
    terms = member._order_by_clauses
    kept = [term for term in terms if not any(_sorted_on(term).compare(f) for f in fixed)]
    if len(kept) < len(terms):
        member = member.order_by(None).order_by(*kept)
    return member.subquery().select()


def _fixed(where: Any) -> list[ColumnElement[Any]]:
    """The expressions a top-level conjunct of ``where`` compares with ``=``."""
    return [
        conjunct.left
        for conjunct in _conjuncts(where)
        if isinstance(conjunct, BinaryExpression) and conjunct.operator is operators.eq
    ]


def _conjuncts(where: Any) -> list[Any]:
    while isinstance(where, Grouping):
        where = where.element
    if isinstance(where, BooleanClauseList) and where.operator is operators.and_:
        return [part for clause in where.clauses for part in _conjuncts(clause)]
    return [] if where is None else [where]


def _sorted_on(term: Any) -> Any:
    """The expression of an ORDER BY term (without ASC/DESC)."""
    return term.element if isinstance(term, UnaryExpression) else term


def _bare(member: Any) -> Any:
    """A member of a compound select without the parentheses SQLAlchemy put around it."""
    return member.element if isinstance(member, SelectStatementGrouping) else member


def _ordered_or_limited(member: Any) -> bool:
    select = _bare(member)
    return isinstance(select, Select) and bool(
        select._order_by_clauses or select._limit_clause is not None
    )
