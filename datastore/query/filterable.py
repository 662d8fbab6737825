"""Which conditions on source properties a filter may hold, checked on the tree: the compiler
(``storage/compiler.py``) has no SQL for the others. The HTTP layer checks a request's filter
once the caller has passed the rules, so a client learns of an unusable condition where the
compiler would refuse it, before anything is read."""

from __future__ import annotations

from datastore.errors import BadRequest
from datastore.query import ast

DATETIME_SOURCES = ("$createdDatetime", "$updatedDatetime")
TEXT_SOURCES = ("$id", "$extends")


def check(node: ast.Node) -> None:
    """Raise BadRequest for the first condition on a source property that cannot be applied
    (in the compiler's order: items left to right, element queries inside their field)."""
    if isinstance(node, ast.And | ast.Or):
        for item in node.items:
            check(item)
    elif isinstance(node, ast.Not):
        check(node.item)
    elif isinstance(node, ast.Const | ast.CompareFields):
        return
    elif isinstance(node.field, ast.Source):
        _check_source(node)
    elif isinstance(node, ast.ElemMatch):
        check(node.query)


def _check_source(node: ast.Node) -> None:
    if isinstance(node, ast.Exists):
        return
    if isinstance(node, ast.In):
        for value in node.values:
            _check_source(ast.Compare(node.field, "eq", value))
        return
    if isinstance(node, ast.StringMatch | ast.Regex):
        assert isinstance(node.field, ast.Source)
        if node.field.name not in TEXT_SOURCES:
            raise BadRequest(f"{node.field.name} is not a text property.")
        return
    if not isinstance(node, ast.Compare) or not isinstance(node.field, ast.Source):
        raise BadRequest("This condition cannot be applied to a source property.")
    name = node.field.name
    if node.elementwise and name not in DATETIME_SOURCES + TEXT_SOURCES:
        raise BadRequest(f"{name} cannot be filtered on.")
