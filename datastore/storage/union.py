"""An OR of mutually exclusive conditions, each with its own index, run as a UNION ALL.

Equality on an ``x-datastore-indexes`` field is "the field is this string (or number)" OR "the
field is an array holding it"; no document can be both. A range (``$gt`` ...) is likewise "the
field's typed view is in range" OR "the field is an array with an element in range". Each
branch has an index that yields rows in creation order (``storage/indexes.py``), but
PostgreSQL cannot walk two indexes in order through an OR: it fetches every match and sorts,
or walks the whole collection in creation order filtering rows. On 1,000,000 documents with
5,000 matches, a listing's ``LIMIT 20`` took ~4 ms either way. Run as one ordered, limited
SELECT per branch merged by a UNION ALL, it reads 20 index entries and 20 rows: ~0.3 ms.

The query compiler marks such an OR (``exclusive_or``); the document store splits a WHERE whose
top-level conjuncts hold one (``branches``). Because the branches exclude each other, the
union holds no row twice, and the outer ORDER BY/LIMIT/OFFSET give the OR's answer.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BooleanClauseList, ColumnElement, Grouping

_MARK = "datastore_exclusive_or"


def exclusive_or(*branches: ColumnElement[bool]) -> ColumnElement[bool]:
    """``OR`` of conditions no row satisfies two of; the store may run it as a UNION ALL."""
    return sa.or_(*branches)._annotate({_MARK: True})


def branches(where: ColumnElement[bool] | None) -> list[ColumnElement[bool]] | None:
    """``where`` as one condition per branch of the first exclusive OR among its top-level
    conjuncts (the other conjuncts repeated in each), or None when it has none."""
    if where is None:
        return None
    conjuncts = _conjuncts(where)
    for i, conjunct in enumerate(conjuncts):
        if isinstance(conjunct, BooleanClauseList) and conjunct._annotations.get(_MARK):
            rest = conjuncts[:i] + conjuncts[i + 1 :]
            return [sa.and_(*rest, branch) for branch in conjunct.clauses]
    return None


def _conjuncts(where: Any) -> list[ColumnElement[Any]]:
    while isinstance(where, Grouping):
        where = where.element
    if isinstance(where, BooleanClauseList) and where.operator is operators.and_:
        return [part for clause in where.clauses for part in _conjuncts(clause)]
    return [where]
