"""The ACL rule language: parsing, evaluation, and agreement of the SQL filter with evaluate."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datastore.auth.acl import (
    AclContext,
    AclSyntaxError,
    check_rule,
    decided_without_caller,
    decided_without_document,
    evaluate,
    parse_rule,
    references,
    to_query,
)
from datastore.clock import format_datetime
from datastore.query import ast
from datastore.query.evaluate import matches


def allows(text: str, **ctx: Any) -> bool:
    return evaluate(parse_rule(text), AclContext(**ctx))


def test_public_in_any_case() -> None:
    assert parse_rule("public").public
    assert parse_rule(" PUBLIC ").public
    assert not parse_rule("jwt.a === 1").public


@pytest.mark.parametrize(
    ("rule", "claims", "expected"),
    [
        ("jwt.isAdmin === true", {"isAdmin": True}, True),
        ("jwt.isAdmin === true", {"isAdmin": 1}, False),
        ("jwt.level >= 3", {"level": 3}, True),
        ("jwt.level > 3", {"level": 3}, False),
        ("jwt.level < 3", {"level": "2"}, False),
        ("jwt.name < 'b'", {"name": "a"}, True),
        ("jwt.n === 1", {"n": 1.0}, True),
        ("jwt.a === jwt.b", {}, False),
        ("jwt.a !== jwt.b", {}, False),
        ("jwt.a !== 'x'", {}, False),
        ("!(jwt.a === 'x')", {}, True),
        ("jwt.isAdmin", {"isAdmin": True}, True),
        ("!jwt.isAdmin", {}, True),
        ("jwt.a === null", {"a": None}, True),
        ("jwt.a === null", {}, False),
        ("jwt.x === 'it\\'s'", {"x": "it's"}, True),
        ("jwt.n === -2.5e1", {"n": -25}, True),
        ("jwt.a === 1 || jwt.b === 2 && jwt.c === 3", {"a": 1}, True),
        ("(jwt.a === 1 || jwt.b === 2) && jwt.c === 3", {"a": 1}, False),
        ("jwt.tags === 'a'", {"tags": ["a"]}, False),
        ("jwt.o.p === 'q'", {"o": {"p": "q"}}, True),
    ],
)
def test_evaluation(rule: str, claims: dict[str, Any], expected: bool) -> None:
    assert allows(rule, claims=claims) is expected


def test_operands_from_every_root() -> None:
    rule = "document.owner === jwt.sub && parent.$id === 'u1' && apikey.readonly === false"
    ctx = {
        "claims": {"sub": "x"},
        "document": {"owner": "x"},
        "parent": {"$id": "u1"},
        "apikey_readonly": False,
    }
    assert allows(rule, **ctx)
    assert not allows(rule, **{**ctx, "apikey_readonly": None})
    assert references(parse_rule(rule)) == {"document", "jwt", "parent", "apikey"}


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("", 0, "empty"),
        ("jwt.a ==", 6, "==="),
        ("jwt.a = 1", 6, "==="),
        ("user.a === 1", 0, "unknown name"),
        ("jwt.a === 'open", 10, "unterminated"),
        ("(jwt.a === 1", 12, "missing )"),
        ("jwt.a === 1 jwt.b", 12, "unexpected"),
        ("jwt.a ===", 9, "ends too early"),
        ("apikey.admin", 0, "apikey.readonly"),
        ("jwt === 1", 0, "needs a property"),
        ("jwt.a & jwt.b", 6, "&&"),
        ("jwt.a === #", 10, "unexpected character"),
    ],
)
def test_syntax_errors_with_positions(text: str, position: int, fragment: str) -> None:
    with pytest.raises(AclSyntaxError) as caught:
        parse_rule(text)
    assert caught.value.position == position
    assert fragment in caught.value.message
    assert check_rule(text)[0][0] == position


def test_no_eval() -> None:
    with pytest.raises(AclSyntaxError):
        parse_rule("__import__('os').system('true')")


def test_query_folds_what_is_known() -> None:
    rule = parse_rule("jwt.isAdmin === true || jwt.sub === document.ownerId")
    assert to_query(rule, AclContext(claims={"isAdmin": True})) == ast.TRUE
    assert to_query(rule, AclContext(claims={})) == ast.FALSE
    node = to_query(rule, AclContext(claims={"sub": "u1"}))
    assert node == ast.And(
        (
            ast.Exists(ast.Field(("ownerId",))),
            ast.Compare(ast.Field(("ownerId",)), "eq", "u1", elementwise=False),
        )
    )


# -- the SQL filter and the evaluator agree (through the reference evaluator) -------------

CREATED = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
values = st.one_of(
    st.integers(0, 2),
    st.sampled_from([1.0, 0.5]),
    st.sampled_from(["a", "b", "", "2026-01-01T10:00:00+02:00", format_datetime(CREATED)]),
    st.booleans(),
    st.none(),
    st.lists(st.sampled_from([0, 1, 1.0]), max_size=2),
    st.dictionaries(st.sampled_from(["p", "q"]), st.sampled_from([1, 1.0, "a"]), max_size=2),
)
literals = st.one_of(
    st.integers(0, 2).map(str),
    st.sampled_from(["1.0", "'a'", "'b'", "''", "true", "false", "null"]),
    st.sampled_from(["'2026-01-01T10:00:00+02:00'", f"'{format_datetime(CREATED)}'"]),
)
doc_refs = st.sampled_from(
    [
        "document.x",
        "document.y",
        "document.o",
        "document.o.p",
        "document.$id",
        "document.$createdDatetime",
        "document.$extends",
    ]
)
jwt_refs = st.sampled_from(["jwt.sub", "jwt.level", "jwt.missing"])
operands = st.one_of(doc_refs, jwt_refs, literals)
comparisons = st.builds(
    lambda a, op, b: f"{a} {op} {b}",
    operands,
    st.sampled_from(["===", "!==", "<", ">", "<=", ">="]),
    operands,
)
rules = st.recursive(
    comparisons,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a} && {b})", inner, inner),
        st.builds(lambda a, b: f"({a} || {b})", inner, inner),
        inner.map(lambda a: f"!({a})"),
    ),
    max_leaves=5,
)
documents = st.fixed_dictionaries(
    {}, optional={"x": values, "y": values, "o": st.fixed_dictionaries({}, optional={"p": values})}
)
claims = st.fixed_dictionaries({}, optional={"sub": values, "level": values})


@settings(max_examples=400, deadline=None)
@given(text=rules, document=documents, jwt=claims)
def test_query_agrees_with_evaluate(
    text: str, document: dict[str, Any], jwt: dict[str, Any]
) -> None:
    rule = parse_rule(text)
    shown = format_datetime(CREATED)
    full = {**document, "$id": "d1", "$createdDatetime": shown, "$extends": ""}
    expected = evaluate(rule, AclContext(claims=jwt, document=full))
    node = to_query(rule, AclContext(claims=jwt))
    sources = {"$id": "d1", "$createdDatetime": CREATED, "$extends": None}
    assert matches(node, document, sources) is expected, (text, node)


@settings(max_examples=400, deadline=None)
@given(text=rules, document=documents, jwt=claims)
def test_a_decision_without_the_caller_holds_for_every_caller(
    text: str, document: dict[str, Any], jwt: dict[str, Any]
) -> None:
    """The change feed decides once per change for all subscribers when the claims do not
    matter (``decided_without_caller``): that decision must be ``evaluate``'s for any claims."""
    rule = parse_rule(text)
    decided = decided_without_caller(rule, AclContext(document=document))
    for caller in (jwt, {}, None):
        answer = evaluate(rule, AclContext(claims=caller, document=document))
        assert decided is None or decided is answer, (text, caller)


@settings(max_examples=400, deadline=None)
@given(text=rules, jwt=claims)
def test_a_decision_without_the_document_is_what_the_query_folds_to(
    text: str, jwt: dict[str, Any]
) -> None:
    """A guarded GET refuses before it reads when no document could pass
    (``decided_without_document`` is False): exactly when the rule's filter folds to FALSE."""
    rule = parse_rule(text)
    for caller in (jwt, {}, None):
        ctx = AclContext(claims=caller)
        node = to_query(rule, ctx)
        expected = True if node == ast.TRUE else False if node == ast.FALSE else None
        assert decided_without_document(rule, ctx) is expected, (text, caller, node)


def test_a_decision_without_the_caller() -> None:
    rule = parse_rule("document.published === true || jwt.sub === document.ownerId")
    assert decided_without_caller(rule, AclContext(document={"published": True})) is True
    unpublished = {"published": False, "ownerId": "u1"}
    assert decided_without_caller(rule, AclContext(document=unpublished)) is None
    # No owner: the comparison with a missing value is false whoever asks.
    assert decided_without_caller(rule, AclContext(document={"published": False})) is False
    owner = parse_rule("jwt.sub === document.ownerId && document.locked !== true")
    assert decided_without_caller(owner, AclContext(document={"locked": True})) is False
