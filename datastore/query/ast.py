"""The single query tree every dialect parses into and the one SQL compiler consumes.

Both query dialects (Codehooks ``q=``/``h=``/URL parameters and Squiz ``filters=``/``sort=``)
and the ACL rules (for list filtering) produce these nodes; ``storage/compiler.py`` turns them
into one SQLAlchemy expression per backend, and ``query/evaluate.py`` evaluates them in Python (the
reference the compiler is tested against).

Semantics, shared by every backend and the reference evaluator:

* A ``Field`` addresses a property of the document by path; ``Source`` addresses a source
  property (``$id``, ``$createdDatetime``, ``$updatedDatetime``...).
* Comparisons are type-strict: a value only compares with values of the same JSON type
  (numbers: int and float alike; booleans are not numbers). ``"10" > 9`` is false.
* Strict comparisons (``Compare(elementwise=False)`` and ``CompareFields``, the ACL's forms) see
  a source as the string a document's GET shows: ``$createdDatetime``/``$updatedDatetime`` as
  ``2026-01-01T10:00:00.000000Z`` (compared as text, never as instants), ``$extends`` as ``""``
  when the document extends nothing. Elsewhere (the query dialects) datetime sources compare
  as instants with a value that parses as a date-time.
* Equality is structural: numbers by value (``1`` equals ``1.0``), arrays element by element,
  objects key by key whatever their key order.
* ``Compare(elementwise=True)`` has Mongo semantics: when the stored value is an array, the
  condition holds if it holds for the whole array (equality only) or for any element.
  ``elementwise=False`` (used by ACL rules) compares the value as it is.
* ``Compare(op="eq", value=None)`` with ``elementwise=True`` matches missing fields too
  (Mongo); ``op="ne"`` is the exact negation of ``op="eq"``.
* Ordering (gt/gte/lt/lte) holds between numbers, strings, and (Mongo-style, elementwise only)
  booleans with false < true; ``elementwise=False`` and ``CompareFields`` (the ACL's strict
  forms) order only numbers and strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

from datastore.types import JSON

CompareOp = Literal["eq", "ne", "gt", "gte", "lt", "lte"]
SOURCE_NAMES = ("$id", "$createdDatetime", "$updatedDatetime", "$extends")


@dataclass(frozen=True)
class Field:
    """A property of the (effective) document body, by path: ``("address", "city")``."""

    path: tuple[str, ...]


@dataclass(frozen=True)
class Source:
    """A source property the datastore keeps outside the body: one of ``SOURCE_NAMES``."""

    name: str


Operand: TypeAlias = Field | Source


@dataclass(frozen=True)
class Compare:
    """``field <op> value``; see the module docstring for array and null semantics."""

    field: Operand
    op: CompareOp
    value: JSON
    elementwise: bool = True


@dataclass(frozen=True)
class CompareFields:
    """``left <op> right`` between two fields of the same document (strict, not elementwise).
    False when either side is missing."""

    left: Operand
    op: CompareOp
    right: Operand


@dataclass(frozen=True)
class In:
    """The field equals one of ``values`` (elementwise for arrays, like Mongo ``$in``)."""

    field: Operand
    values: tuple[JSON, ...]


@dataclass(frozen=True)
class Exists:
    """The field is present (any value, null included) when ``exists``; absent otherwise."""

    field: Operand
    exists: bool = True


@dataclass(frozen=True)
class Regex:
    """A string field (or any string element of an array field) matches ``pattern``.
    ``flags`` is a subset of ``"imsx"``. Non-strings never match."""

    field: Operand
    pattern: str
    flags: str = ""


@dataclass(frozen=True)
class StringMatch:
    """A string field starts or ends with ``value`` (case-sensitive, literal)."""

    field: Operand
    kind: Literal["prefix", "suffix"]
    value: str


@dataclass(frozen=True)
class ArrayAll:
    """The field is an array containing every one of ``values`` (Mongo ``$all``, Squiz ``@>``)."""

    field: Operand
    values: tuple[JSON, ...]


@dataclass(frozen=True)
class ArrayWithin:
    """The field is an array whose every element is one of ``values`` (Squiz ``<@``)."""

    field: Operand
    values: tuple[JSON, ...]


@dataclass(frozen=True)
class ArraySize:
    """The field is an array of exactly ``size`` elements."""

    field: Operand
    size: int


@dataclass(frozen=True)
class ElemMatch:
    """The field is an array with at least one element matching ``query``, whose fields are
    relative to the element (``Field(())`` is the element itself)."""

    field: Operand
    query: Node


@dataclass(frozen=True)
class And:
    """Every item holds (an empty And is true)."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    """At least one item holds (an empty Or is false)."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """The item does not hold."""

    item: Node


@dataclass(frozen=True)
class Const:
    """Always true or always false (what an ACL rule reduces to once the JWT is known)."""

    value: bool


Node: TypeAlias = (
    Compare
    | CompareFields
    | In
    | Exists
    | Regex
    | StringMatch
    | ArrayAll
    | ArrayWithin
    | ArraySize
    | ElemMatch
    | And
    | Or
    | Not
    | Const
)

TRUE = Const(True)
FALSE = Const(False)


@dataclass(frozen=True)
class SortKey:
    """Order by ``field``; values of different JSON types order by type first (null < number <
    string < object < array < boolean, Mongo's order); missing counts as null. Nulls come first
    ascending and last descending."""

    field: Operand
    descending: bool = False


@dataclass(frozen=True)
class Projection:
    """Which top-level (or dotted) fields to return: ``include`` or ``exclude`` paths."""

    paths: tuple[tuple[str, ...], ...]
    include: bool = True


@dataclass(frozen=True)
class Query:
    """A whole list request: filter, order (creation order breaks ties), window, projection."""

    filter: Node = TRUE
    sort: tuple[SortKey, ...] = ()
    limit: int | None = None
    offset: int = 0
    projection: Projection | None = None


def as_datetime(value: Any) -> datetime | None:
    """A value compared with ``$createdDatetime`` / ``$updatedDatetime`` as a UTC moment (an
    ISO 8601 text; naive means UTC), or None when it is not one."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):  # 9999-12-31T23:59:59-14:00 is past year 9999 in UTC
        return None
