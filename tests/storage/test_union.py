"""Splitting a WHERE at its exclusive ORs (storage/union.py)."""

from __future__ import annotations

import sqlalchemy as sa

from datastore.storage.tables import documents as t
from datastore.storage.union import MAX_SPLIT, branches, exclusive_or


def _text(clause: sa.ColumnElement[bool]) -> str:
    return str(clause.compile(compile_kwargs={"literal_binds": True}))


def test_no_exclusive_or_at_the_top_is_no_split() -> None:
    marked = exclusive_or(t.c.doc_id == "a", t.c.version == 1)
    assert branches(None) is None
    assert branches(t.c.pk > 1) is None
    assert branches(sa.or_(marked, t.c.pk == 1)) is None  # under an OR
    assert branches(sa.not_(marked)) is None  # under a NOT
    assert branches(sa.or_(t.c.doc_id == "a", t.c.version == 1)) is None  # not marked


def test_each_branch_keeps_the_other_conjuncts() -> None:
    marked = exclusive_or(t.c.doc_id == "a", t.c.version == 1)
    split = branches(sa.and_(t.c.space == "s", sa.and_(marked, t.c.pk > 3)))
    assert split is not None
    assert [_text(b) for b in split] == [
        "documents.space = 's' AND documents.pk > 3 AND documents.doc_id = 'a'",
        "documents.space = 's' AND documents.pk > 3 AND documents.version = 1",
    ]


def test_ors_of_one_key_combine_only_their_same_branches() -> None:
    """``f >= 1 AND f < 5`` on an indexed field: typed-and-typed, array-and-array; a field
    is never both, so the mixed combinations are left out. Different keys combine freely."""
    low = exclusive_or(t.c.pk >= 1, t.c.extends == "arr-low", key=("f",))
    high = exclusive_or(t.c.pk < 5, t.c.extends == "arr-high", key=("f",))
    split = branches(sa.and_(low, high))
    assert split is not None
    assert [_text(b) for b in split] == [
        "documents.pk >= 1 AND documents.pk < 5",
        "documents.extends = 'arr-low' AND documents.extends = 'arr-high'",
    ]
    other = exclusive_or(t.c.doc_id == "x", t.c.doc_id == "y", key=("g",))
    combined = branches(sa.and_(low, other))
    assert combined is not None and len(combined) == 4


def test_at_most_max_split_ors_are_split() -> None:
    ors = [exclusive_or(t.c.pk == n, t.c.version == n, key=(str(n),)) for n in range(5)]
    split = branches(sa.and_(*ors))
    assert split is not None and len(split) == 2**MAX_SPLIT
    assert all(" OR " in _text(b) for b in split)  # the rest stay ORs
