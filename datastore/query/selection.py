"""What a read or a by-query write selects, as backend-neutral values: the HTTP layer parses a
request into a ``Selection``, the document service hands it to storage, which compiles it
(``storage/plans.py``). ``CollectionFacts`` are what the compiler needs to know of a
collection's documents, built once per endpoint at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from datastore.query import ast


@dataclass(frozen=True)
class CollectionFacts:
    """A collection's documents as the compiler sees them: the schema defaults a GET shows
    (by property path), whether documents inherit values (``$extends``), and the fields
    ``x-datastore-indexes`` indexes."""

    default_paths: Mapping[tuple[str, ...], Any] | None = None
    inherits: bool = False
    indexed: frozenset[tuple[str, ...]] = frozenset()


@dataclass(frozen=True)
class Rule:
    """An access rule as a query tree (the documents the caller may read or change), with the
    facts of the schema the rule sees documents through."""

    node: ast.Node
    facts: CollectionFacts


@dataclass(frozen=True)
class Keyset:
    """A keyset page's boundary: the values of a cursor's row (checked against the order's
    columns by storage), which way the page goes, and the parameter that carried it."""

    values: tuple[Any, ...]
    backwards: bool
    name: str


@dataclass(frozen=True)
class Selection:
    """The documents a request selects (its filter and access rule, both must hold), their
    order (sort keys, then creation order) and the window: ``limit``/``offset``, or a
    ``keyset`` boundary."""

    filter: ast.Node = ast.TRUE
    access: Rule | None = None
    sort: tuple[ast.SortKey, ...] = ()
    limit: int | None = None
    offset: int = 0
    keyset: Keyset | None = field(default=None)
