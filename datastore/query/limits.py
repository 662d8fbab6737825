"""How large a client's query may be: the count of its conditions and of its sort keys.

A query's size is what its SQL costs to build, plan and run: every node of the tree counts one,
and so does every value of ``$all`` / ``@>`` / ``<@`` and every object or array in ``$in`` (each
is a condition of its own in the SQL); a list's scalar values are one ``IN (...)`` per type, and
count toward ``MAX_LIST_VALUES`` over the whole query instead. Past the caps, SQLite refused the
statement ("Expression tree is too large", "parser stack overflow": 503) and PostgreSQL or the
SQL compiler spent seconds on it (a 300-key sort, twenty 1000-value ``$in`` lists).
"""

from __future__ import annotations

from collections.abc import Sequence

from datastore.errors import BadRequest, InvalidParam
from datastore.query import ast

MAX_LIST_VALUES = 1000
"""Values in all the lists of one query (``$in``, ``$nin``, ``$all``, ``@>``, ``<@``)."""


def _too_large(name: str, reason: str) -> BadRequest:
    return BadRequest("The query is too large.", invalid_params=[InvalidParam(name, reason)])


def _lists(node: ast.Node) -> tuple[int, int]:
    """(conditions, list values) of one leaf."""
    if isinstance(node, ast.In):
        compound = sum(1 for v in node.values if isinstance(v, dict | list))
        return 1 + compound, len(node.values)
    if isinstance(node, ast.ArrayAll | ast.ArrayWithin):
        return max(1, len(node.values)), len(node.values)
    return 1, 0


def measure(node: ast.Node) -> tuple[int, int]:
    """(conditions, list values) of a query tree; see the module docstring."""
    nodes, values = 0, 0
    stack = [node]
    while stack:
        here = stack.pop()
        if isinstance(here, ast.And | ast.Or):
            nodes += 1
            stack.extend(here.items)
        elif isinstance(here, ast.Not):
            nodes += 1
            stack.append(here.item)
        elif isinstance(here, ast.ElemMatch):
            nodes += 1
            stack.append(here.query)
        else:
            leaf_nodes, leaf_values = _lists(here)
            nodes, values = nodes + leaf_nodes, values + leaf_values
    return nodes, values


def check_query(node: ast.Node, name: str, max_nodes: int) -> None:
    """Raise BadRequest naming ``name`` when the query is past ``max_nodes`` conditions or
    ``MAX_LIST_VALUES`` list values."""
    nodes, values = measure(node)
    if nodes > max_nodes:
        raise _too_large(
            name, f"has {nodes} conditions and operators; at most {max_nodes} are accepted"
        )
    if values > MAX_LIST_VALUES:
        raise _too_large(
            name, f"lists {values} values in all; at most {MAX_LIST_VALUES} are accepted"
        )


def check_sort(keys: Sequence[ast.SortKey], name: str, max_keys: int) -> None:
    """Raise BadRequest naming ``name`` when there are more than ``max_keys`` sort keys."""
    if len(keys) > max_keys:
        raise _too_large(name, f"has {len(keys)} sort keys; at most {max_keys} are accepted")
