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
top-level conjuncts hold some (``branches``). Because the branches exclude each other, the
union holds no row twice, and the outer ORDER BY/LIMIT/OFFSET give the OR's answer.
"""

from __future__ import annotations

import itertools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BooleanClauseList, ColumnElement, Grouping

_MARK = "datastore_exclusive_or"


def exclusive_or(*branches: ColumnElement[bool], key: object = None) -> ColumnElement[bool]:
    """``OR`` of conditions no row satisfies two of; the store may run it as a UNION ALL.
    Exclusive ORs with the same ``key`` (not None) list their branches in the same order and
    the same branch of each excludes every other branch of the others (for a field: its
    typed value, or an array), so only combinations of the same branch can match."""
    return sa.or_(*branches)._annotate({_MARK: (key,)})


MAX_SPLIT = 3
"""At most this many exclusive ORs of a WHERE are split (2 ** 3 = 8 branches); more stay ORs."""


def branches(where: ColumnElement[bool] | None) -> list[ColumnElement[bool]] | None:
    """``where`` as one condition per combination of the branches of the exclusive ORs among
    its top-level conjuncts (the other conjuncts repeated in each), or None when it has none.
    Combinations of branches of exclusive ORs exclude each other too. Splitting every one (a
    range's ``>=`` and ``<`` are two) lets each branch bound its index scan on all of them: with
    only the first split, ``price >= 50 AND price < 51`` walked the sort index past half the
    collection (134 ms at 100,000 documents) instead of reading the 1 % in range."""
    if where is None:
        return None
    conjuncts = _conjuncts(where)
    split = [
        c for c in conjuncts if isinstance(c, BooleanClauseList) and c._annotations.get(_MARK)
    ][:MAX_SPLIT]
    if not split:
        return None
    rest = [c for c in conjuncts if not any(c is s for s in split)]
    keys = [c._annotations[_MARK][0] for c in split]
    out = []
    for picks in itertools.product(*(range(len(c.clauses)) for c in split)):
        chosen: dict[object, int] = {}
        if any(
            key is not None and chosen.setdefault(key, pick) != pick
            for key, pick in zip(keys, picks, strict=True)
        ):
            continue  # a field both a number and an array: no row, and costly to look for
        out.append(sa.and_(*rest, *(c.clauses[p] for c, p in zip(split, picks, strict=True))))
    return out


def _conjuncts(where: Any) -> list[ColumnElement[Any]]:
    while isinstance(where, Grouping):
        where = where.element
    if isinstance(where, BooleanClauseList) and where.operator is operators.and_:
        return [part for clause in where.clauses for part in _conjuncts(clause)]
    return [where]
