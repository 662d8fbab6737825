"""The Squiz dialect: filters grammar and typing, sort, paging parameters."""

from __future__ import annotations

import pytest

from datastore.errors import BadRequest
from datastore.query import ast
from datastore.query.squiz import parse_filters, parse_page, parse_sort

TYPES = {
    ("name",): ("string",),
    ("n",): ("integer",),
    ("ok",): ("boolean",),
    ("tags", "[]"): ("string",),
    ("code",): ("string",),
}


def f(text: str) -> ast.Node:
    return parse_filters(text, lambda path: TYPES.get(path))


N = ast.Field(("n",))
NAME = ast.Field(("name",))


def test_operators_and_typing() -> None:
    assert f("document.name===test") == ast.Compare(NAME, "eq", "test")
    assert f("document.code===10") == ast.Compare(ast.Field(("code",)), "eq", "10")
    assert f("document.n>=10") == ast.Compare(N, "gte", 10)
    assert f("document.ok!==true") == ast.Compare(ast.Field(("ok",)), "ne", True)
    assert f("document.other===10") == ast.Compare(ast.Field(("other",)), "eq", 10)
    assert f("document.other==='10'") == ast.Compare(ast.Field(("other",)), "eq", "10")
    assert f('document.name==="a;b,c"') == ast.Compare(NAME, "eq", "a;b,c")
    assert f("document.tags@>[a,b]") == ast.ArrayAll(ast.Field(("tags",)), ("a", "b"))
    assert f("document.tags<@[a]") == ast.ArrayWithin(ast.Field(("tags",)), ("a",))
    assert f("document.$createdDatetime>2024-01-01") == ast.Compare(
        ast.Source("$createdDatetime"), "gt", "2024-01-01"
    )


def test_and_binds_tighter_than_or() -> None:
    a, b, c = (ast.Compare(N, "eq", i) for i in (1, 2, 3))
    assert f("document.n===1;document.n===2,document.n===3") == ast.Or((ast.And((a, b)), c))
    assert f("document.n===1;(document.n===2,document.n===3)") == ast.And((a, ast.Or((b, c))))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("name===x", "document."),
        ("document.n=x", "operator"),
        ("document.n===abc", "number"),
        ("(document.n===1", "missing )"),
        ("document.name==='open", "unterminated"),
        ("document.tags@>a", "list"),
        ("document.n===1)", "unexpected"),
    ],
)
def test_errors_name_the_position(text: str, fragment: str) -> None:
    with pytest.raises(BadRequest) as caught:
        f(text)
    assert caught.value.invalid_params[0].name == "filters"
    assert fragment in caught.value.invalid_params[0].reason


def test_sort() -> None:
    assert parse_sort("+document.a,-document.$createdDatetime") == (
        ast.SortKey(ast.Field(("a",)), False),
        ast.SortKey(ast.Source("$createdDatetime"), True),
    )
    with pytest.raises(BadRequest):
        parse_sort("a")


def test_page_parameters() -> None:
    assert parse_page({}, default_size=10, max_size=100) is None
    page = parse_page({"page[size]": "5", "page[v]": "2"}, default_size=10, max_size=100)
    assert page is not None and page.size == 5
    for bad in (
        {"page[size]": "0"},
        {"page[size]": "x"},
        {"page[v]": "3"},
        {"page[after]": "a", "page[before]": "b"},
        {"page[bogus]": "1"},
    ):
        with pytest.raises(BadRequest):
            parse_page(bad, default_size=10, max_size=100)
