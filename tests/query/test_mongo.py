"""The Codehooks dialect parser: every operator, URL form and error."""

from __future__ import annotations

from typing import Any

import pytest

from datastore.errors import BadRequest
from datastore.query import ast
from datastore.query.mongo import apply_projection, parse_list_request, parse_mongo_query

A = ast.Field(("a",))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"a": 1}, ast.Compare(A, "eq", 1)),
        ({"a.b": "x"}, ast.Compare(ast.Field(("a", "b")), "eq", "x")),
        ({"a": {"$gt": 1, "$lt": 5}}, ast.And((ast.Compare(A, "gt", 1), ast.Compare(A, "lt", 5)))),
        ({"a": {"$in": [1, 2]}}, ast.In(A, (1, 2))),
        ({"a": {"$nin": [1]}}, ast.Not(ast.In(A, (1,)))),
        ({"a": {"$exists": False}}, ast.Exists(A, False)),
        ({"a": {"$regex": "^x", "$options": "i"}}, ast.Regex(A, "^x", "i")),
        ({"a": {"$not": {"$gt": 3}}}, ast.Not(ast.Compare(A, "gt", 3))),
        ({"a": {"$all": ["x", "y"]}}, ast.ArrayAll(A, ("x", "y"))),
        ({"a": {"$size": 2}}, ast.ArraySize(A, 2)),
        ({"a": {"$startsWith": "ab"}}, ast.StringMatch(A, "prefix", "ab")),
        ({"a": {"$endsWith": "yz"}}, ast.StringMatch(A, "suffix", "yz")),
        (
            {"a": {"$elemMatch": {"$gte": 2}}},
            ast.ElemMatch(A, ast.Compare(ast.Field(()), "gte", 2)),
        ),
        ({"a": {"$date": "2024-01-01"}}, ast.Compare(A, "eq", "2024-01-01")),
        ({"a": {"$gt": {"$date": "2024-01-01"}}}, ast.Compare(A, "gt", "2024-01-01")),
        ({"_id": "x"}, ast.Compare(ast.Source("$id"), "eq", "x")),
        ({"$or": [{"a": 1}, {"a": 2}]}, ast.Or((ast.Compare(A, "eq", 1), ast.Compare(A, "eq", 2)))),
        ({"$nor": [{"a": 1}]}, ast.Not(ast.Or((ast.Compare(A, "eq", 1),)))),
        ({"a": {"x": 1}}, ast.Compare(A, "eq", {"x": 1})),
    ],
)
def test_operators(query: dict[str, Any], expected: ast.Node) -> None:
    assert parse_mongo_query(query) == expected


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ({"a": {"$bogus": 1}}, "q.a.$bogus"),
        ({"$where": "1"}, "q.$where"),
        ({"a": {"$in": 5}}, "q.a.$in"),
        ({"a": {"$size": "2"}}, "q.a.$size"),
        ({"a": {"$regex": "("}}, "q.a.$regex"),
        ({"a": {"$options": "i"}}, "q.a.$options"),
        ({"a": {"$regex": "x", "$options": "z"}}, "q.a.$regex"),
        ({"$or": []}, "q.$or"),
        ({"a": {"$exists": "yes"}}, "q.a.$exists"),
        ({"": 1}, "q."),
        ({"a..b": 1}, "q.a..b"),
        ({"a": {"$in": list(range(2000))}}, "q.a.$in"),
        ([1], "q"),
    ],
)
def test_errors_name_the_part(query: Any, name: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_mongo_query(query)
    assert caught.value.invalid_params[0].name == name


def url(*pairs: tuple[str, str]) -> ast.Node:
    return parse_list_request(list(pairs), default_limit=100, max_limit=1000).filter


def test_url_parameter_mode() -> None:
    name = ast.Field(("name",))
    age = ast.Field(("age",))
    kind = ast.Field(("type",))
    assert url(("name", "Polly")) == ast.Compare(name, "eq", "Polly")
    assert url(("age>3", "")) == ast.Compare(age, "gt", 3)
    assert url(("age>", "3")) == ast.Compare(age, "gte", 3)
    assert url(("age<", "10")) == ast.Compare(age, "lte", 10)
    assert url(("type", "Dog,Cat")) == ast.In(kind, ("Dog", "Cat"))
    assert url(("type!", "Dog")) == ast.Not(ast.Compare(kind, "eq", "Dog"))
    assert url(("type", "!Dog")) == ast.Not(ast.Compare(kind, "eq", "Dog"))
    assert url(("name", "/^po/i")) == ast.Regex(name, "^po", "i")
    assert url(("deleted", "")) == ast.Exists(ast.Field(("deleted",)), True)
    assert url(("!deleted", "")) == ast.Exists(ast.Field(("deleted",)), False)
    assert url(("tags:all", "a,b")) == ast.ArrayAll(ast.Field(("tags",)), ("a", "b"))
    assert url(("ok", "true"), ("n", "1.5")) == ast.And(
        (ast.Compare(ast.Field(("ok",)), "eq", True), ast.Compare(ast.Field(("n",)), "eq", 1.5))
    )
    assert url(("zip", "042")) == ast.Compare(ast.Field(("zip",)), "eq", "042")
    assert url(("when", "2024-01-05")) == ast.Compare(ast.Field(("when",)), "eq", "2024-01-05")


def test_hints_and_keywords() -> None:
    request = parse_list_request(
        [
            ("q", '{"a": 1}'),
            ("h", '{"sort": {"a": -1}, "$limit": 5, "skip": 2, "fields": {"a": 1}}'),
        ],
        default_limit=100,
        max_limit=1000,
    )
    assert request.sort == (ast.SortKey(A, True),)
    assert (request.limit, request.offset) == (5, 2)
    assert request.projection == ast.Projection((("a",),), include=True)
    keywords = parse_list_request(
        [("sort", "-a,b"), ("limit", "7"), ("offset", "3"), ("omit", "x,y")],
        default_limit=100,
        max_limit=1000,
    )
    assert keywords.sort == (ast.SortKey(A, True), ast.SortKey(ast.Field(("b",)), False))
    assert (keywords.limit, keywords.offset) == (7, 3)
    assert keywords.projection == ast.Projection((("x",), ("y",)), include=False)
    assert parse_list_request(
        [("h", '{"$onlycount": true}')], default_limit=1, max_limit=1
    ).count_only


@pytest.mark.parametrize(
    ("pairs", "name"),
    [
        ([("q", "{bad")], "q"),
        ([("h", "[1]")], "h"),
        ([("h", '{"bogus": 1}')], "h.bogus"),
        ([("limit", "-1")], "limit"),
        ([("limit", "5000")], "limit"),
        ([("h", '{"sort": {"a": 2}}')], "h.sort.a"),
        ([("q", "{}"), ("q", "{}")], "q"),
    ],
)
def test_bad_requests(pairs: list[tuple[str, str]], name: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_list_request(pairs, default_limit=100, max_limit=1000)
    assert caught.value.invalid_params[0].name == name


def test_projection_keeps_the_id() -> None:
    doc = {"_id": "1", "a": {"b": 1, "c": 2}, "d": 3}
    assert apply_projection(doc, ast.Projection((("a", "b"),)), "_id") == {
        "_id": "1",
        "a": {"b": 1},
    }
    assert apply_projection(doc, ast.Projection((("a",), ("d",)), include=False), "_id") == {
        "_id": "1"
    }
