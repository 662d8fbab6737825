"""The layering the code keeps, read from every module's imports (any import, at any depth of
the module: top level, functions, ``TYPE_CHECKING`` blocks).

* The HTTP layer parses requests into backend-neutral values (``query/selection.py``): no
  module under ``datastore/http/`` imports SQLAlchemy or ``datastore.storage.tables``.
* The query package is backend-neutral: nothing under ``datastore/query/`` imports from
  ``datastore.storage``.
* Storage compiles: ``storage/indexes.py`` takes the compiler from ``datastore.storage``
  (so the query and storage packages import each other in one direction only).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "datastore"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` (a module of the package) imports."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    return imported(path.read_text(), package)


def imported(source: str, package: list[str]) -> set[str]:
    """Every module ``source`` (a module of ``package``) imports, by full dotted name
    (``from a import b`` counts as both ``a`` and ``a.b``, since ``b`` may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def modules(folder: str) -> Iterator[Path]:
    """Every Python module under ``datastore/<folder>``."""
    yield from sorted((PACKAGE / folder).rglob("*.py"))


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def offending(folder: str, *forbidden: str) -> dict[str, list[str]]:
    """The modules under ``folder`` that import one of ``forbidden`` (or a module in it)."""
    found = {}
    for path in modules(folder):
        bad = sorted(n for n in imports(path) if any(_within(n, f) for f in forbidden))
        if bad:
            found[str(path.relative_to(PACKAGE.parent))] = bad
    return found


def test_the_folders_hold_modules() -> None:
    for folder in ("http", "query", "storage"):
        assert len(list(modules(folder))) > 3, folder


def test_import_reading_sees_every_form() -> None:
    source = """
import sqlalchemy.exc
from datastore import storage
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from ..storage.tables import documents
def late():
    from .sibling import thing
"""
    found = imported(source, ["datastore", "http"])
    assert {"sqlalchemy.exc", "datastore.storage", "datastore.storage.tables"} <= found
    assert "datastore.http.sibling" in found
    assert "datastore.query.ast" in imports(PACKAGE / "query" / "selection.py")


@pytest.mark.parametrize("forbidden", ["sqlalchemy", "datastore.storage.tables"])
def test_http_builds_no_sql(forbidden: str) -> None:
    assert offending("http", forbidden) == {}


def test_handlers_manage_no_threads() -> None:
    """The services (documents, key-value, queues, API keys) and storage's status reads are
    async at their surface: the HTTP layer awaits them and hands nothing to threads itself."""
    assert offending("http", "datastore.concurrency") == {}


def test_only_storage_builds_sql() -> None:
    """Outside ``storage/`` (and the migrations, which are storage's own) no module imports
    SQLAlchemy, except the ``Connection`` type a transaction is handed around as
    (``sqlalchemy.engine``), nor the tables."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if _within(_module_name(path), "datastore.storage"):
            continue
        bad = sorted(
            name
            for name in imports(path)
            if (_within(name, "sqlalchemy") and not _within(name, "sqlalchemy.engine"))
            or _within(name, "datastore.storage.tables")
        )
        if bad:
            found[str(path.relative_to(PACKAGE.parent))] = bad
    assert found == {}


def test_query_knows_no_storage() -> None:
    assert offending("query", "datastore.storage") == {}


SHARED_LEAVES = ("datastore.errors", "datastore.types", "datastore.jsonvalues", "datastore.clock")


def test_query_stands_on_the_shared_leaves_alone() -> None:
    """The query tree, parsers and reference evaluator sit below every service: from the
    package they import only each other and the leaves every layer shares."""
    for path in modules("query"):
        ours = {n for n in imports(path) if _within(n, "datastore")}
        allowed = ("datastore.query", *SHARED_LEAVES)
        assert all(any(_within(n, a) for a in allowed) for n in ours), (path, ours)


def test_storage_indexes_take_the_compiler_from_storage() -> None:
    names = imports(PACKAGE / "storage" / "indexes.py")
    assert "datastore.storage.compiler" in names
    assert not (PACKAGE / "query" / "sql.py").exists()


BACKEND_NAMES = frozenset({"postgresql", "sqlite"})
CHOOSE_A_BACKEND = {
    # Where naming a backend is the module's job, not a branch that belongs in a dialect:
    "datastore/storage/engine.py",  # builds the engine, pool and runner for a URL
    "datastore/storage/connect.py",  # opens a database from a URL
    "datastore/storage/async_store.py",  # psycopg's async driver: PostgreSQL only
    "datastore/storage/tables.py",  # column types' per-backend variants (JSONB, INTEGER pk)
}


def backend_branches(source: str) -> list[int]:
    """The lines of ``source`` that compare something with a backend's name, or ask a
    database whether it is PostgreSQL (``is_postgresql``)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) and o.value in BACKEND_NAMES for o in operands):
                lines.append(node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr == "is_postgresql":
            lines.append(node.lineno)
    return sorted(lines)


def test_backend_branch_reading_sees_comparisons() -> None:
    source = (
        'if conn.dialect.name == "postgresql":\n    pass\nx = "sqlite" != d\ny = db.is_postgresql\n'
    )
    assert backend_branches(source) == [1, 3, 4]
    assert backend_branches('t.with_variant(JSONB(), "postgresql")\n') == []


def test_only_the_dialects_branch_on_a_backend() -> None:
    """Each backend's SQL decisions (upserts, row locks, advisory locks, collation, index
    shapes, inherited values) live in ``storage/dialects/``; the rest of the package asks the
    connection's ``Dialect`` (``dialects.dialect_of``) instead of comparing names."""
    found = {
        str(path.relative_to(PACKAGE.parent)): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if (lines := backend_branches(path.read_text()))
        and not _within(_module_name(path), "datastore.storage.dialects")
        and str(path.relative_to(PACKAGE.parent)) not in CHOOSE_A_BACKEND
    }
    assert found == {}
