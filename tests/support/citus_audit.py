"""The Citus audit: does a statement that touches a distributed table filter by ``space``?

Citus routes a statement on a table distributed by ``space`` to one shard only when it pins
the space: every reference to ``documents``, ``document_lineage``, ``keyvalues`` or ``jobs``
must sit in a query level whose WHERE or JOIN conditions compare that reference's ``space``
with something (a value, or the ``space`` of another such reference: a co-located join), and
every INSERT into one must set ``space``. DDL is maintenance (``datastore migrate`` and the
start-up index creation run it once, outside requests) and is not audited. ``EXCEPTIONS``
lists the few statements that may span spaces, each with its reason (``docs/deploy.md``
repeats them).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import sqlglot
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlglot import exp

DISTRIBUTED = frozenset({"documents", "document_lineage", "keyvalues", "jobs"})
"""The tables distributed by ``space`` (``docs/deploy.md``: the Citus DDL)."""
SCOPES = (exp.Select, exp.Update, exp.Delete)


EXCEPTIONS: dict[str, str] = {
    "datastore/storage/keyvalue.py:purge_expired": "the background sweep of expired keys,"
    " every space at once (a multi-shard DELETE)",
    "datastore/storage/status.py:queue_depths": "/__metrics: jobs by space, topic and status"
    " (a multi-shard aggregate)",
    "datastore/storage/scan.py:scan_documents": "check-data and export without --space read every"
    " space (multi-shard reads, in primary-key batches)",
}
"""Functions whose statements may span spaces (maintenance), with the reason; a statement
is excepted when any of these is on the stack that sent it. docs/deploy.md lists them."""


def violations(sql: str) -> list[str]:
    """Why ``sql`` is not routable to one space's shard ([] when it is)."""
    try:
        trees = sqlglot.parse(sql, read="postgres")
    except sqlglot.errors.ParseError as exc:
        if any(name in sql for name in DISTRIBUTED):
            return [f"cannot parse ({str(exc).splitlines()[0]})"]
        return []
    found: list[str] = []
    for tree in trees:
        if tree is None or isinstance(tree, (exp.Create, exp.Drop, exp.Alter, exp.Command)):
            continue
        for table in tree.find_all(exp.Table):
            if table.name in DISTRIBUTED and not _pinned(table):
                found.append(f"{table.alias_or_name} ({table.name}) is not filtered by space")
    return list(dict.fromkeys(found))


def _pinned(table: exp.Table) -> bool:
    insert = table.find_ancestor(exp.Insert)
    if insert is not None and _insert_target(insert) is table:
        return "space" in {column.name for column in insert.this.expressions}
    scope = table.find_ancestor(*SCOPES)
    if scope is None:
        return False
    return any(_compares_space(condition, table, scope) for condition in _conditions(scope))


def _insert_target(insert: exp.Insert) -> exp.Table | None:
    target = insert.this
    if isinstance(target, exp.Schema):
        target = target.this
    return target if isinstance(target, exp.Table) else None


def _conditions(scope: exp.Expression) -> list[exp.Expression]:
    """The WHERE and JOIN ON conditions of one query level."""
    found: list[exp.Expression] = []
    where = scope.args.get("where")
    if where is not None:
        found.append(where.this)
    for join in scope.args.get("joins") or []:
        on = join.args.get("on")
        if on is not None:
            found.append(on)
    return found


def _compares_space(condition: exp.Expression, table: exp.Table, scope: exp.Expression) -> bool:
    """Whether ``condition`` holds a top-level (ANDed) ``<table>.space = ...`` or ``IN``."""
    for term in _and_terms(condition):
        if isinstance(term, (exp.EQ, exp.In)):
            sides = [term.this, term.args.get("expression")]
            if any(_is_space_of(side, table, scope) for side in sides):
                return True
    return False


def _and_terms(condition: exp.Expression) -> list[exp.Expression]:
    if isinstance(condition, exp.Paren):
        return _and_terms(condition.this)
    if isinstance(condition, exp.And):
        return _and_terms(condition.this) + _and_terms(condition.expression)
    return [condition]


def _is_space_of(side: exp.Expression | None, table: exp.Table, scope: exp.Expression) -> bool:
    if not isinstance(side, exp.Column) or side.name != "space":
        return False
    if side.table:
        return side.table == table.alias_or_name
    own = [t for t in scope.find_all(exp.Table) if t.find_ancestor(*SCOPES) is scope]
    return len(own) == 1


NOT_ORIGINS = ("/storage/engine.py", "/tests/support/citus_audit.py", "/tests/conftest.py")


def origin() -> tuple[str, ...]:
    """The frames of the package and the tests that sent the statement, innermost first, as
    ``datastore/folder/file.py:function`` (or ``tests/...``)."""
    frames = []
    for frame in reversed(traceback.extract_stack()):
        path = frame.filename
        if path.endswith(NOT_ORIGINS):
            continue
        for root in ("/datastore/", "/tests/"):
            if root in path:
                relative = root.strip("/") + "/" + path.rsplit(root, 1)[1]
                frames.append(f"{relative}:{frame.name}")
                break
    return tuple(frames) or ("?",)


def audited(frames: tuple[str, ...]) -> bool:
    """Whether a statement sent from ``frames`` is the package's (the tests' own statements
    are not audited) and not one of the EXCEPTIONS."""
    ours = any(frame.startswith("datastore/") for frame in frames)
    return ours and not any(frame in EXCEPTIONS for frame in frames)


@contextmanager
def recording(engine: Engine) -> Iterator[dict[str, tuple[str, ...]]]:
    """Every statement sent while inside, with where it was sent from: the engine's
    (SQLAlchemy's ``before_cursor_execute``) and every psycopg async cursor's (the async
    store's pool)."""
    statements: dict[str, tuple[str, ...]] = {}

    def on_execute(*args: Any) -> None:
        statements.setdefault(str(args[2]), origin())

    original = psycopg.AsyncCursor.execute

    async def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        statements.setdefault(query if isinstance(query, str) else repr(query), origin())
        return await original(self, query, *args, **kwargs)

    event.listen(engine, "before_cursor_execute", on_execute)
    psycopg.AsyncCursor.execute = execute  # type: ignore[method-assign]
    try:
        yield statements
    finally:
        psycopg.AsyncCursor.execute = original  # type: ignore[method-assign]
        event.remove(engine, "before_cursor_execute", on_execute)
