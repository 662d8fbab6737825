"""Access changes: which way an ``x-datastore-acl`` rule moved (``acl_direction``).

Decided: ``public`` to anything and back, a rule added to or removed from an operation
protected by ``security`` (no rule: any valid credential), an added or removed ``&&`` term, an
added or removed ``||`` term; anything else is ``changed``."""

from __future__ import annotations

from datastore.auth.acl import AclSyntaxError, AllOf, AnyOf, Expr, Rule, parse_rule
from datastore.blueprint.diff.changes import Direction


def acl_direction(old: str | None, new: str | None) -> Direction:
    """How an operation's access changed; ``None`` is "no rule" (any valid credential, when the
    operation has ``security``). ``""`` when the two rules mean the same (same parse tree)."""
    try:
        old_rule = parse_rule(old) if old is not None else None
        new_rule = parse_rule(new) if new is not None else None
    except AclSyntaxError:
        return "changed"
    if old_rule is None or new_rule is None:
        return _presence_direction(old_rule, new_rule)
    if old_rule.public or new_rule.public:
        return _public_direction(old_rule.public, new_rule.public)
    assert old_rule.expr is not None and new_rule.expr is not None
    return _terms_direction(old_rule.expr, new_rule.expr)


def _presence_direction(old: Rule | None, new: Rule | None) -> Direction:
    """A rule added or removed: no rule lets any valid credential in, ``public`` lets more."""
    if old is None and new is None:
        return ""
    if old is None:
        assert new is not None
        return "loosened" if new.public else "tightened"
    return "tightened" if old.public else "loosened"


def _public_direction(old_public: bool, new_public: bool) -> Direction:
    if old_public == new_public:
        return ""
    return "tightened" if old_public else "loosened"


def _terms_direction(old: Expr, new: Expr) -> Direction:
    """More ``&&`` terms or fewer ``||`` terms tighten; the reverse loosens."""
    if old == new:
        return ""
    old_and, new_and = _terms(old, AllOf), _terms(new, AllOf)
    if old_and < new_and:
        return "tightened"
    if new_and < old_and:
        return "loosened"
    old_or, new_or = _terms(old, AnyOf), _terms(new, AnyOf)
    if new_or < old_or:
        return "tightened"
    if old_or < new_or:
        return "loosened"
    return "changed"


def _terms(expr: Expr, kind: type[AllOf] | type[AnyOf]) -> frozenset[Expr]:
    return frozenset(expr.items) if isinstance(expr, kind) else frozenset({expr})
