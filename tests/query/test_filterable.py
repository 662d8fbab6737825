"""``query/filterable.check`` refuses exactly the source conditions the compiler refuses, with
the compiler's message, so a request learns of them at the same point as before the check
moved out of the HTTP layer's SQL."""

from __future__ import annotations

import pytest

from datastore.errors import BadRequest
from datastore.query import ast, filterable
from datastore.storage.compiler import compiler_for

CREATED = ast.Source("$createdDatetime")
ID = ast.Source("$id")
EXTENDS = ast.Source("$extends")
UPDATED = ast.Source("$updatedDatetime")
NAME = ast.Field(("name",))

NODES: list[ast.Node] = [
    ast.Compare(ID, "eq", "a"),
    ast.Compare(CREATED, "gt", "2026-01-01"),
    ast.Compare(EXTENDS, "eq", None),
    ast.Compare(UPDATED, "eq", 3, elementwise=False),
    ast.Exists(EXTENDS, False),
    ast.In(ID, ("a", "b")),
    ast.In(CREATED, ()),
    ast.Regex(ID, "^a"),
    ast.Regex(CREATED, "^2026"),
    ast.StringMatch(EXTENDS, "prefix", "x/"),
    ast.StringMatch(UPDATED, "suffix", "Z"),
    ast.ArraySize(ID, 1),
    ast.ArrayAll(CREATED, ("a",)),
    ast.ArrayWithin(ID, ()),
    ast.ElemMatch(ID, ast.TRUE),
    ast.ElemMatch(NAME, ast.Regex(CREATED, "x")),
    ast.ElemMatch(NAME, ast.Compare(ast.Field(()), "eq", 1)),
    ast.CompareFields(CREATED, "eq", NAME),
    ast.Not(ast.Or((ast.Compare(NAME, "eq", 1), ast.Regex(UPDATED, "x")))),
    ast.And((ast.ArraySize(EXTENDS, 0), ast.Regex(CREATED, "x"))),
    ast.And((ast.Regex(CREATED, "x"), ast.ArraySize(EXTENDS, 0))),
    ast.TRUE,
]


def _refusal(action: object) -> str | None:
    try:
        action()  # type: ignore[operator]
    except BadRequest as error:
        return error.detail
    return None


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize("node", NODES, ids=repr)
def test_the_check_refuses_what_the_compiler_refuses(node: ast.Node, dialect: str) -> None:
    compiler = compiler_for(None, inherits=False, dialect=dialect)
    compiled = _refusal(lambda: compiler.filter(node))
    assert _refusal(lambda: filterable.check(node)) == compiled


def test_some_conditions_are_refused() -> None:
    refused = [node for node in NODES if _refusal(lambda n=node: filterable.check(n))]
    assert len(refused) >= 5
