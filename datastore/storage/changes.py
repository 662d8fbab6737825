"""The change log (``changes``, ``change_spaces``): numbering, reads, heads, and retention.

Triggers on ``documents`` append to the log in the writing transaction (migrations 0007,
0008). On PostgreSQL they take no number: ``number`` runs the sequencer, which numbers what has
committed since (docs/changes.md); ``read``, ``head`` and ``heads`` run it first, so they never
miss a committed change. On SQLite the triggers number at the write and ``number`` does
nothing. Every function takes the caller's connection (``number`` commits on its own).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from datastore.storage.dialects import dialect_of
from datastore.storage.documents import COLUMNS, StoredDocument, document_from_row
from datastore.storage.tables import change_spaces, changes
from datastore.storage.tables import documents as docs

CHANNEL = "datastore_changes"
"""The PostgreSQL NOTIFY channel the sequencer signals on (payload: a space's new head)."""

KINDS = ("created", "updated", "deleted")


@dataclass(frozen=True)
class LoggedChange:
    """One row of the log: which document, how it changed, and a deleted document's row."""

    seq: int
    collection: str
    doc_id: str
    kind: str
    at_ms: int
    old: StoredDocument | None


@dataclass(frozen=True)
class Head:
    """A space's last change number, and the last one retention removed (0: none)."""

    head: int
    pruned_through: int


_LOG_COLUMNS = (
    changes.c.seq,
    changes.c.collection,
    changes.c.doc_id,
    changes.c.kind,
    changes.c.at_ms,
    changes.c.old,
)


def _moment(value: Any) -> datetime:
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _old_document(collection: str, doc_id: str, old: Any) -> StoredDocument | None:
    if not isinstance(old, dict):
        return None
    return StoredDocument(
        pk=int(old["pk"]),
        collection=collection,
        doc_id=doc_id,
        body=old["body"] if isinstance(old["body"], dict) else {},
        created_at=_moment(old["created_at"]),
        updated_at=_moment(old["updated_at"]),
        version=int(old["version"]),
        extends=old.get("extends"),
    )


def _logged(row: Any) -> LoggedChange:
    return LoggedChange(
        seq=row.seq,
        collection=row.collection,
        doc_id=row.doc_id,
        kind=row.kind,
        at_ms=row.at_ms,
        old=_old_document(row.collection, row.doc_id, row.old),
    )


def number(conn: Connection, space: str | None = None) -> int:
    """Number the committed, unnumbered changes of ``space`` (of every space: None; at most
    10,000 per space per call) and NOTIFY the new heads, in one short transaction of its own;
    how many. On ``conn`` when it is an autocommit connection, else on another one: the
    numbers must be committed before anyone reads them, whatever becomes of ``conn``'s
    transaction (a read behind a transaction pooler ends in a rollback). PostgreSQL only
    (SQLite numbers at the write; a read replica leaves it to its primary): 0 elsewhere."""
    if not dialect_of(conn).sequenced_changes:
        return 0
    statement = sa.text("SELECT datastore_number_changes(:space)")
    if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return int(conn.execute(statement, {"space": space}).scalar() or 0)
    with conn.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as own:
        return int(own.execute(statement, {"space": space}).scalar() or 0)


def read(
    conn: Connection,
    space: str,
    after: int,
    limit: int,
    collection: str | None = None,
    upto: int | None = None,
    *,
    numbered: bool = False,
) -> list[LoggedChange]:
    """Up to ``limit`` changes of ``space`` numbered above ``after`` (and at most ``upto``),
    in order (of one ``collection`` when given). Numbers what committed first, unless
    ``numbered`` (the caller just did)."""
    if not numbered:
        number(conn, space)
    query = sa.select(*_LOG_COLUMNS).where(changes.c.space == space, changes.c.seq > after)
    if collection is not None:
        query = query.where(changes.c.collection == collection)
    if upto is not None:
        query = query.where(changes.c.seq <= upto)
    return [_logged(row) for row in conn.execute(query.order_by(changes.c.seq).limit(limit))]


Found = tuple[LoggedChange, StoredDocument | None]
"""A change and its document: the stored one now for a creation or an update (None when it
is gone since), the deleted row for a deletion."""


def with_documents(conn: Connection, space: str, batch: list[LoggedChange]) -> list[Found]:
    """``batch`` with the current document of each creation and update."""
    places = [(c.collection, c.doc_id) for c in batch if c.kind != "deleted"]
    current = current_documents(conn, space, places)
    return [
        (c, c.old if c.kind == "deleted" else current.get((c.collection, c.doc_id))) for c in batch
    ]


def _last_number(space: Any) -> Any:
    """The highest change number of ``space`` (0 when none): the greater of the log's highest
    and ``change_spaces.head``, a floor retention raises before it deletes."""
    logged = sa.select(sa.func.max(changes.c.seq)).where(changes.c.space == space).scalar_subquery()
    return sa.func.coalesce(logged, 0)


def head(conn: Connection, space: str, *, numbered: bool = False) -> Head:
    """The space's head and retention horizon (zeros for a space that never changed), after
    numbering what committed (unless ``numbered``: the caller just did)."""
    if not numbered:
        number(conn, space)
    row = conn.execute(
        sa.select(change_spaces.c.head, change_spaces.c.pruned_through, _last_number(space)).where(
            change_spaces.c.space == space
        )
    ).first()
    if row is None:
        return Head(0, 0)
    return Head(max(row[0], row[2]), row[1])


def heads(conn: Connection, spaces: Iterable[str]) -> dict[str, int]:
    """The head of each of ``spaces`` (0 for one that never changed), after numbering what
    committed."""
    wanted = list(spaces)
    number(conn, wanted[0] if len(wanted) == 1 else None)
    rows = conn.execute(
        sa.select(
            change_spaces.c.space, change_spaces.c.head, _last_number(change_spaces.c.space)
        ).where(change_spaces.c.space.in_(wanted))
    )
    found = {row[0]: max(row[1], row[2]) for row in rows}
    return {space: found.get(space, 0) for space in wanted}


def current_documents(
    conn: Connection, space: str, places: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], StoredDocument]:
    """The stored documents at ``places`` (collection, id) that exist now, by place."""
    if not places:
        return {}
    query = sa.select(*COLUMNS).where(
        docs.c.space == space,
        sa.tuple_(docs.c.collection, docs.c.doc_id).in_(sorted(set(places))),
    )
    found = (document_from_row(row) for row in conn.execute(query))
    return {(doc.collection, doc.doc_id): doc for doc in found}


def prune_bound(conn: Connection, space: str, cutoff_ms: int, keep: int) -> int:
    """The highest change number of ``space`` retention removes: older than ``cutoff_ms``,
    or more than ``keep`` behind the head (0 keeps all by count)."""
    current = head(conn, space)
    by_age = conn.execute(
        sa.select(sa.func.max(changes.c.seq)).where(
            changes.c.space == space, changes.c.at_ms < cutoff_ms
        )
    ).scalar()
    by_count = current.head - keep if keep > 0 else 0
    return max(int(by_age or 0), by_count, current.pruned_through)


def oldest(conn: Connection, space: str) -> int | None:
    """The number of the oldest change the log still holds for ``space`` (None: none)."""
    found = conn.execute(
        sa.select(sa.func.min(changes.c.seq)).where(changes.c.space == space)
    ).scalar()
    return None if found is None else int(found)


def spaces_with_changes(conn: Connection) -> list[str]:
    """Every space that has a log."""
    return list(conn.execute(sa.select(change_spaces.c.space)).scalars())


def raise_horizon(conn: Connection, space: str, through: int) -> None:
    """Record that changes up to ``through`` are gone (before they are deleted, so a reader
    that finds them missing also finds the horizon past its cursor). Numbers what committed
    first: a number below the horizon is never given."""
    number(conn, space)
    conn.execute(
        sa.update(change_spaces)
        .where(change_spaces.c.space == space, change_spaces.c.pruned_through < through)
        .values(
            pruned_through=through,
            # the numbers deleted stay given: the next follows the head, not the log's rest
            head=sa.case((change_spaces.c.head < through, through), else_=change_spaces.c.head),
        )
    )


def delete_through(conn: Connection, space: str, through: int, batch: int) -> int:
    """Delete up to ``batch`` of the oldest changes numbered up to ``through``; how many."""
    nth = conn.execute(
        sa.select(changes.c.seq)
        .where(changes.c.space == space, changes.c.seq <= through)
        .order_by(changes.c.seq)
        .offset(batch - 1)
        .limit(1)
    ).scalar()
    bound = through if nth is None else min(int(nth), through)
    result = conn.execute(
        sa.delete(changes).where(changes.c.space == space, changes.c.seq <= bound)
    )
    return int(result.rowcount or 0)
