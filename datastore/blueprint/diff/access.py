"""Access changes of an operation: its ``x-datastore-acl`` rule, old → new, and which way it
moved (``acl_direction``), and its ``security``.

Decided: ``public`` to anything and back, a rule added to or removed from an operation
protected by ``security`` (no rule: any valid credential), an added or removed ``&&`` term, an
added or removed ``||`` term; anything else is ``changed``."""

from __future__ import annotations

import json

from datastore.auth.acl import AclSyntaxError, AllOf, AnyOf, Expr, Rule, parse_rule
from datastore.blueprint.diff.changes import Direction
from datastore.blueprint.diff.endpoints import Op
from datastore.blueprint.diff.nodes import text
from datastore.blueprint.diff.record import Recorder

ACL_KEY = "x-datastore-acl"


def compare_access(rec: Recorder, old: Op, new: Op) -> None:
    """An operation's rule and ``security`` (its own, else the document's), OLD against NEW."""
    _compare_rule(rec, old, new)
    _compare_security(rec, old, new)


def _compare_rule(rec: Recorder, old: Op, new: Op) -> None:
    old_text, new_text = _rule(old), _rule(new)
    direction = acl_direction(old_text, new_text)
    if direction:
        pointer = (*new.pointer, ACL_KEY) if new_text is not None else new.pointer
        shown = f"{new.name}: rule {_shown(old_text)} → {_shown(new_text)}"
        rec.add(
            "new",
            pointer,
            "access",
            "acl-changed",
            shown,
            direction=direction,
            old=old_text,
            new=new_text,
        )


def _compare_security(rec: Recorder, old: Op, new: Op) -> None:
    old_security = text(old.spec.get("security", rec.old.document.get("security")))
    new_security = text(new.spec.get("security", rec.new.document.get("security")))
    if old_security != new_security:
        pointer = (*new.pointer, "security") if "security" in new.spec else new.pointer
        rec.add(
            "new",
            pointer,
            "access",
            "security-changed",
            f"{new.name}: security {old_security} → {new_security}",
            direction="changed",
            old=old_security,
            new=new_security,
        )


def _rule(op: Op) -> str | None:
    value = op.spec.get(ACL_KEY)
    return None if value is None else str(value)


def _shown(rule: str | None) -> str:
    return "(none: any valid credential)" if rule is None else json.dumps(rule, ensure_ascii=False)


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
