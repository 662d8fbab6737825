"""The ``x-datastore-acl`` rule language: parser, evaluator, and translation to a query filter.

Grammar (parsed once at start-up by a tokenizer and a recursive-descent parser; never eval)::

    rule     := "public" | or
    or       := and ("||" and)*
    and      := unary ("&&" unary)*
    unary    := "!" unary | "(" or ")" | compare
    compare  := operand (("===" | "!==" | "<" | ">" | "<=" | ">=") operand)?
    operand  := ref | string | number | "true" | "false" | "null"
    ref      := ("jwt" | "document" | "parent") ("." name)+ | "apikey.readonly"

A bare operand means ``operand === true``. Semantics: ``&&``/``||`` short-circuit; a comparison
with a missing operand (absent claim or property, no token, no parent) is false, so two missing
claims are never equal; ``===`` compares JSON type and value (``1 === 1.0``, ``true !== 1``);
ordering holds only between two numbers or two strings.

``to_query`` turns a rule into a filter over documents for list requests: everything but the
``document.*`` operands is known once the caller is, so those parts fold to constants and the
rest becomes query-tree comparisons that the SQL compiler turns into the WHERE clause. It agrees
exactly with ``evaluate`` (a property-based test checks that).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datastore.jsonvalues import json_equal, json_type
from datastore.query import ast

ROOTS = ("jwt", "document", "parent", "apikey")
COMPARISONS = ("===", "!==", "<=", ">=", "<", ">")
_OPS: dict[str, ast.CompareOp] = {
    "===": "eq",
    "!==": "ne",
    "<": "lt",
    ">": "gt",
    "<=": "lte",
    ">=": "gte",
}
_FLIPPED: dict[ast.CompareOp, ast.CompareOp] = {
    "eq": "eq",
    "ne": "ne",
    "lt": "gt",
    "gt": "lt",
    "lte": "gte",
    "gte": "lte",
}
_SOURCE_NAMES = {"$id", "$createdDatetime", "$updatedDatetime", "$extends"}


class AclSyntaxError(ValueError):
    """A rule that does not parse; ``position`` is the 0-based offset of the problem."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at column {position + 1})")
        self.message = message
        self.position = position


# -- the tree -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """An operand that reads a value: ``jwt.sub``, ``document.owner.id``, ``apikey.readonly``."""

    root: str
    path: tuple[str, ...]


@dataclass(frozen=True)
class Lit:
    """A literal value."""

    value: Any


Operand = Ref | Lit


@dataclass(frozen=True)
class Cmp:
    """``left <op> right``."""

    left: Operand
    op: ast.CompareOp
    right: Operand


@dataclass(frozen=True)
class AllOf:
    """``a && b && ...``."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class AnyOf:
    """``a || b || ...``."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Negation:
    """``!a``."""

    item: Expr


Expr = Cmp | AllOf | AnyOf | Negation


@dataclass(frozen=True)
class Rule:
    """A parsed rule: ``public``, or an expression."""

    text: str
    expr: Expr | None

    @property
    def public(self) -> bool:
        """Whether anyone may pass (no credential needed)."""
        return self.expr is None


# -- tokenizer and parser -----------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<op>===|!==|<=|>=|&&|\|\||[<>!()])
  | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_$][A-Za-z0-9_$\-]*(?:\.[A-Za-z_$][A-Za-z0-9_$\-]*)*)
  | (?P<bad_op>==|!=|=|&|\|)
    """,
    re.X,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "/": "/"}


@dataclass(frozen=True)
class _Token:
    kind: str  # op, number, string, name, end
    text: str
    position: int


def _unquote(text: str, position: int) -> str:
    out = []
    body = text[1:-1]
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            nxt = body[index + 1]
            if nxt not in _ESCAPES:
                raise AclSyntaxError(f"unknown escape \\{nxt} in a string", position + index + 1)
            out.append(_ESCAPES[nxt])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            if text[position] in "'\"":
                raise AclSyntaxError("unterminated string", position)
            raise AclSyntaxError(f"unexpected character {text[position]!r}", position)
        kind = match.lastgroup
        if kind == "bad_op":
            hint = {"==": "===", "!=": "!==", "=": "===", "&": "&&", "|": "||"}[match.group()]
            raise AclSyntaxError(f"unknown operator {match.group()!r}; use {hint!r}", position)
        if kind != "ws":
            tokens.append(_Token(str(kind), match.group(), position))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.current
        self.index += 1
        return token

    def parse(self) -> Expr:
        if self.current.kind == "end":
            raise AclSyntaxError("the rule is empty", 0)
        expr = self.parse_or()
        if self.current.kind != "end":
            raise AclSyntaxError(f"unexpected {self.current.text!r}", self.current.position)
        return expr

    def parse_or(self) -> Expr:
        items = [self.parse_and()]
        while self.current.text == "||" and self.current.kind == "op":
            self.take()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else AnyOf(tuple(items))

    def parse_and(self) -> Expr:
        items = [self.parse_unary()]
        while self.current.text == "&&" and self.current.kind == "op":
            self.take()
            items.append(self.parse_unary())
        return items[0] if len(items) == 1 else AllOf(tuple(items))

    def parse_unary(self) -> Expr:
        token = self.current
        if token.kind == "op" and token.text == "!":
            self.take()
            return Negation(self.parse_unary())
        if token.kind == "op" and token.text == "(":
            self.take()
            inner = self.parse_or()
            if self.current.text != ")":
                raise AclSyntaxError("missing )", self.current.position)
            self.take()
            return inner
        return self.parse_compare()

    def parse_compare(self) -> Expr:
        left = self.parse_operand()
        token = self.current
        if token.kind == "op" and token.text in COMPARISONS:
            self.take()
            right = self.parse_operand()
            return Cmp(left, _OPS[token.text], right)
        return Cmp(left, "eq", Lit(True))

    def parse_operand(self) -> Operand:
        token = self.take()
        if token.kind == "number":
            number = float(token.text)
            return Lit(
                int(number)
                if number.is_integer() and "." not in token.text and "e" not in token.text.lower()
                else number
            )
        if token.kind == "string":
            return Lit(_unquote(token.text, token.position))
        if token.kind == "name":
            if token.text in ("true", "false", "null"):
                return Lit({"true": True, "false": False, "null": None}[token.text])
            return _reference(token)
        if token.kind == "end":
            raise AclSyntaxError("the rule ends too early: a value is missing", token.position)
        raise AclSyntaxError(f"expected a value, found {token.text!r}", token.position)


def _reference(token: _Token) -> Ref:
    parts = token.text.split(".")
    root, path = parts[0], tuple(parts[1:])
    if root not in ROOTS:
        raise AclSyntaxError(
            f"unknown name {root!r}: a value starts with jwt., document., parent. or "
            "apikey.readonly (quote strings)",
            token.position,
        )
    if not path:
        raise AclSyntaxError(f"{root} needs a property, e.g. {root}.name", token.position)
    if root == "apikey" and path != ("readonly",):
        raise AclSyntaxError("the only apikey property is apikey.readonly", token.position)
    return Ref(root, path)


def parse_rule(text: str) -> Rule:
    """Parse an ACL value; raises AclSyntaxError with the position of the problem."""
    if text.strip().lower() == "public":
        return Rule(text, None)
    return Rule(text, _Parser(text).parse())


def check_rule(text: str) -> list[tuple[int, str]]:
    """For the linter: [(position, message)], empty when the rule parses."""
    try:
        parse_rule(text)
    except AclSyntaxError as exc:
        return [(exc.position, f"ACL: {exc.message}")]
    return []


def references(rule: Rule) -> set[str]:
    """The roots a rule reads (``jwt``, ``document``, ``parent``, ``apikey``)."""
    found: set[str] = set()

    def visit(expr: Expr) -> None:
        if isinstance(expr, Cmp):
            found.update(o.root for o in (expr.left, expr.right) if isinstance(o, Ref))
        elif isinstance(expr, AllOf | AnyOf):
            for item in expr.items:
                visit(item)
        else:
            visit(expr.item)

    if rule.expr is not None:
        visit(rule.expr)
    return found


def needs_claims(rule: Rule) -> bool:
    """Whether the rule can pass only with verified JWT claims: every way through it compares
    a ``jwt.`` value, and a comparison with a missing value is false. (Conservative: a rule
    under ``!`` is taken to pass without claims.)"""

    def needs(expr: Expr) -> bool:
        if isinstance(expr, Cmp):
            return any(isinstance(o, Ref) and o.root == "jwt" for o in (expr.left, expr.right))
        if isinstance(expr, AllOf):
            return any(needs(item) for item in expr.items)
        if isinstance(expr, AnyOf):
            return all(needs(item) for item in expr.items)
        return False

    return rule.expr is not None and needs(rule.expr)


# -- evaluation ---------------------------------------------------------------------------

_MISSING: Any = object()


@dataclass(frozen=True)
class AclContext:
    """What a rule can see: the verified claims, the API key, the document, its parent."""

    claims: Mapping[str, Any] | None = None
    apikey_readonly: bool | None = None
    document: Mapping[str, Any] | None = None
    parent: Mapping[str, Any] | None = None


def _walk(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _value(operand: Operand, ctx: AclContext) -> Any:
    if isinstance(operand, Lit):
        return operand.value
    if operand.root == "apikey":
        return _MISSING if ctx.apikey_readonly is None else ctx.apikey_readonly
    source = {"jwt": ctx.claims, "document": ctx.document, "parent": ctx.parent}[operand.root]
    return _MISSING if source is None else _walk(source, operand.path)


def compare(left: Any, op: ast.CompareOp, right: Any) -> bool:
    """One comparison with the rule language's semantics (missing → false)."""
    if left is _MISSING or right is _MISSING:
        return False
    if op == "eq":
        return json_equal(left, right)
    if op == "ne":
        return not json_equal(left, right)
    kind = json_type(left)
    if kind != json_type(right) or kind not in ("number", "string"):
        return False
    if op == "lt":
        return bool(left < right)
    if op == "lte":
        return bool(left <= right)
    if op == "gt":
        return bool(left > right)
    return bool(left >= right)


def _evaluate(expr: Expr, ctx: AclContext) -> bool:
    if isinstance(expr, Cmp):
        return compare(_value(expr.left, ctx), expr.op, _value(expr.right, ctx))
    if isinstance(expr, AllOf):
        return all(_evaluate(item, ctx) for item in expr.items)
    if isinstance(expr, AnyOf):
        return any(_evaluate(item, ctx) for item in expr.items)
    return not _evaluate(expr.item, ctx)


def evaluate(rule: Rule, ctx: AclContext) -> bool:
    """Whether the rule allows the request described by ``ctx``."""
    return True if rule.expr is None else _evaluate(rule.expr, ctx)


def _decided_cmp(expr: Cmp, ctx: AclContext, unknown: frozenset[str]) -> bool | None:
    known = [o for o in (expr.left, expr.right) if not (isinstance(o, Ref) and o.root in unknown)]
    if len(known) == 2:
        return compare(_value(expr.left, ctx), expr.op, _value(expr.right, ctx))
    if len(known) == 1:
        # Decided whatever the unknown side holds: a comparison with a missing value is
        # false, and so is an ordering of a value that is not a number or a string.
        value = _value(known[0], ctx)
        if value is _MISSING:
            return False
        if expr.op not in ("eq", "ne") and json_type(value) not in ("number", "string"):
            return False
    return None


def _decided(expr: Expr, ctx: AclContext, unknown: frozenset[str]) -> bool | None:
    if isinstance(expr, Cmp):
        return _decided_cmp(expr, ctx, unknown)
    if isinstance(expr, Negation):
        inner = _decided(expr.item, ctx, unknown)
        return None if inner is None else not inner
    results = [_decided(item, ctx, unknown) for item in expr.items]
    if isinstance(expr, AllOf):
        return False if False in results else (True if None not in results else None)
    return True if True in results else (False if None not in results else None)


def decided_without_caller(rule: Rule, ctx: AclContext) -> bool | None:
    """What ``evaluate`` answers for ``ctx``'s document and parent whatever the caller's
    claims and API key are, or None when it depends on them (three-valued: a comparison that
    reads ``jwt`` or ``apikey`` is unknown). Lets one decision serve many callers."""
    if rule.expr is None:
        return True
    return _decided(rule.expr, ctx, frozenset({"jwt", "apikey"}))


def decided_without_document(rule: Rule, ctx: AclContext) -> bool | None:
    """What ``evaluate`` answers for ``ctx``'s caller and parent whatever the document is, or
    None when it depends on the document. False exactly when ``to_query`` folds to ``FALSE``
    (and True exactly when it folds to ``TRUE``), without building the filter: a guarded GET
    asks this before it reads, so a missing and a forbidden document answer alike."""
    if rule.expr is None:
        return True
    return _decided(rule.expr, ctx, frozenset({"document"}))


# -- translation to a query filter --------------------------------------------------------


def _field(ref: Ref) -> ast.Operand:
    if len(ref.path) == 1 and ref.path[0] in _SOURCE_NAMES:
        return ast.Source(ref.path[0])
    return ast.Field(ref.path)


def _is_document(operand: Operand) -> bool:
    return isinstance(operand, Ref) and operand.root == "document"


def _cmp_query(expr: Cmp, ctx: AclContext) -> ast.Node:
    left_doc, right_doc = _is_document(expr.left), _is_document(expr.right)
    if not left_doc and not right_doc:
        return ast.Const(compare(_value(expr.left, ctx), expr.op, _value(expr.right, ctx)))
    if left_doc and right_doc:
        assert isinstance(expr.left, Ref) and isinstance(expr.right, Ref)
        return ast.CompareFields(_field(expr.left), expr.op, _field(expr.right))
    if left_doc:
        ref, op, known = expr.left, expr.op, _value(expr.right, ctx)
    else:
        ref, op, known = expr.right, _FLIPPED[expr.op], _value(expr.left, ctx)
    assert isinstance(ref, Ref)
    if known is _MISSING:
        return ast.FALSE
    if op not in ("eq", "ne") and json_type(known) not in ("number", "string"):
        return ast.FALSE
    field = _field(ref)
    strict = ast.Compare(field, op, known, elementwise=False)
    if isinstance(field, ast.Source):
        return strict  # always in the document a rule sees (http/guard.document_view)
    return ast.And((ast.Exists(field), strict))


def _fold(node: ast.Node) -> ast.Node:
    if isinstance(node, ast.And):
        items = [_fold(i) for i in node.items]
        if any(i == ast.FALSE for i in items):
            return ast.FALSE
        kept = tuple(i for i in items if i != ast.TRUE)
        return ast.TRUE if not kept else kept[0] if len(kept) == 1 else ast.And(kept)
    if isinstance(node, ast.Or):
        items = [_fold(i) for i in node.items]
        if any(i == ast.TRUE for i in items):
            return ast.TRUE
        kept = tuple(i for i in items if i != ast.FALSE)
        return ast.FALSE if not kept else kept[0] if len(kept) == 1 else ast.Or(kept)
    if isinstance(node, ast.Not):
        inner = _fold(node.item)
        if isinstance(inner, ast.Const):
            return ast.Const(not inner.value)
        return ast.Not(inner)
    return node


def _to_query(expr: Expr, ctx: AclContext) -> ast.Node:
    if isinstance(expr, Cmp):
        return _cmp_query(expr, ctx)
    if isinstance(expr, AllOf):
        return ast.And(tuple(_to_query(i, ctx) for i in expr.items))
    if isinstance(expr, AnyOf):
        return ast.Or(tuple(_to_query(i, ctx) for i in expr.items))
    return ast.Not(_to_query(expr.item, ctx))


def to_query(rule: Rule, ctx: AclContext) -> ast.Node:
    """A filter that holds for exactly the documents ``evaluate`` allows with ``ctx``
    (``ctx.document`` is ignored: the documents are what is filtered)."""
    if rule.expr is None:
        return ast.TRUE
    return _fold(_to_query(rule.expr, ctx))


# -- explanation (the data browser's "Why can't I?", ``serve --dev`` only) ----------------

_SYMBOLS = {op: symbol for symbol, op in _OPS.items()}


def operand_text(operand: Operand) -> str:
    """An operand as the rule language spells it."""
    if isinstance(operand, Lit):
        return json.dumps(operand.value)
    return ".".join((operand.root, *operand.path)) if operand.path else operand.root


def expression_text(expr: Expr) -> str:
    """An expression as the rule language spells it (parenthesised where it nests)."""
    if isinstance(expr, Cmp):
        return f"{operand_text(expr.left)} {_SYMBOLS[expr.op]} {operand_text(expr.right)}"
    if isinstance(expr, Negation):
        inner = expression_text(expr.item)
        return f"!{inner}" if isinstance(expr.item, Cmp) else f"!({inner})"
    joiner = " && " if isinstance(expr, AllOf) else " || "
    return joiner.join(
        f"({expression_text(item)})" if isinstance(item, AllOf | AnyOf) else expression_text(item)
        for item in expr.items
    )


def _explained_operand(operand: Operand, ctx: AclContext) -> dict[str, Any]:
    value = _value(operand, ctx)
    shown: dict[str, Any] = {"text": operand_text(operand)}
    if value is _MISSING:
        shown["missing"] = True
    else:
        shown["value"] = value
    return shown


def explain(expr: Expr, ctx: AclContext) -> dict[str, Any]:
    """The expression evaluated in ``ctx``, node by node: each comparison with the values its
    operands took (``missing`` when absent) and every node's result. Every node is evaluated
    (no short-circuit), so the whole rule is shown; the results agree with ``evaluate``."""
    text = expression_text(expr)
    if isinstance(expr, Cmp):
        return {
            "kind": "compare",
            "text": text,
            "op": _SYMBOLS[expr.op],
            "left": _explained_operand(expr.left, ctx),
            "right": _explained_operand(expr.right, ctx),
            "result": _evaluate(expr, ctx),
        }
    if isinstance(expr, Negation):
        item = explain(expr.item, ctx)
        return {"kind": "not", "text": text, "items": [item], "result": not item["result"]}
    items = [explain(item, ctx) for item in expr.items]
    results = [item["result"] for item in items]
    result = all(results) if isinstance(expr, AllOf) else any(results)
    kind = "and" if isinstance(expr, AllOf) else "or"
    return {"kind": kind, "text": text, "items": items, "result": result}
