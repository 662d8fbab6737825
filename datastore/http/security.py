"""Authentication and access rules at the HTTP edge.

Every operation gets an ``Access`` at start-up: its parsed ``x-datastore-acl`` rule (or
``public``), and whether it needs a credential (any non-public rule, or a ``security``
requirement). Per request, ``admit`` verifies the presented credential (JWT bearer or
``x-apikey``) into a ``Principal``: 401 when one is needed and none is valid, 403 when a
read-only key tries to write. Rules that read the document are checked by the handlers through
``allowed`` (single documents) and ``list_filter`` (collections, translated to SQL).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from starlette.requests import Request

from datastore.auth.acl import (
    AclContext,
    Rule,
    decided_without_document,
    evaluate,
    parse_rule,
    references,
    to_query,
)
from datastore.auth.apikeys import ApiKeyStore
from datastore.auth.credentials import ANONYMOUS, JwtVerifier, Principal
from datastore.blueprint.model import Operation
from datastore.errors import Forbidden, Unauthorized
from datastore.query import ast

WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})


@dataclass(frozen=True)
class Access:
    """The access policy of one operation."""

    rule: Rule | None
    needs_credential: bool
    roots: frozenset[str] = field(init=False)
    """The roots the rule reads (``jwt``, ``document``, ``parent``, ``apikey``)."""

    def __post_init__(self) -> None:
        roots = frozenset(references(self.rule)) if self.rule is not None else frozenset()
        object.__setattr__(self, "roots", roots)

    @property
    def public(self) -> bool:
        """Anyone may call (no credential looked at)."""
        return self.rule is not None and self.rule.public

    def reads(self, root: str) -> bool:
        """Whether the rule reads ``root`` (``document``, ``parent``...)."""
        return root in self.roots


def access_for(op: Operation) -> Access:
    """The policy of an operation (its ACL was checked by the linter; parsed here once)."""
    rule = parse_rule(op.acl) if op.acl is not None else None
    if rule is not None and rule.public:
        return Access(rule, needs_credential=False)
    # Any non-public rule, any security requirement, and neither (deny by default) need one.
    return Access(rule, needs_credential=True)


class Authenticator:
    """Turns a request's credentials into a Principal."""

    def __init__(self, verifier: JwtVerifier | None, apikeys: ApiKeyStore) -> None:
        self.verifier = verifier
        self.apikeys = apikeys

    async def principal(self, request: Request, space: str) -> Principal:
        """The verified caller; ANONYMOUS when no credential is presented. Raises
        Unauthorized when a presented credential is not valid."""
        # One pass over the raw headers: building Starlette's Headers object here was ~5% of
        # a POST's CPU.
        authorization = apikey = None
        for name, value in request.scope["headers"]:
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == b"x-apikey" and apikey is None:
                apikey = value.decode("latin-1")
        claims = None
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("The Authorization header must be 'Bearer <token>'.")
            if self.verifier is None:
                raise Unauthorized("This server accepts no bearer tokens.")
            claims = self.verifier.verify(token.strip())
        if apikey is not None:
            info = await self.apikeys.admit(space, apikey)
            if info is None:
                raise Unauthorized("The API key is not valid here.")
            return Principal(claims, info.id, info.readonly)
        if claims is not None:
            return Principal(claims)
        return ANONYMOUS

    async def admit(self, request: Request, space: str, op: Operation, access: Access) -> Principal:
        """The caller, if allowed to call the operation at all (before any document is read).

        A presented credential is always verified (so public listings can still show a
        signed-in caller their own documents). Raises Unauthorized (credential needed or
        invalid), Forbidden (a read-only key writing).
        """
        principal = await self.principal(request, space)
        outcome = gate(access, op, principal)
        if outcome is Gate.NO_CREDENTIAL:
            raise Unauthorized("This operation needs a bearer token or an API key.")
        if outcome is Gate.READ_ONLY_KEY:
            raise Forbidden("A read-only API key may only read.")
        if outcome is Gate.NO_RULE:
            raise Forbidden("The operation declares no access rule.")
        return principal


class Gate(Enum):
    """What decides whether a caller may call an operation, before any document is read, in
    the order ``gate`` asks; the value is the reason ``/__admin/why`` shows."""

    PUBLIC = "the rule is public"
    NO_CREDENTIAL = "needs a credential (none was sent)"
    READ_ONLY_KEY = "a read-only API key may only read"
    NO_RULE = "the operation declares no access rule"
    ANY_CREDENTIAL = "any valid credential"
    RULE = "the rule decides"

    @property
    def decided(self) -> bool | None:
        """Admitted (True) or refused (False) here, or None when the rule decides."""
        if self is Gate.RULE:
            return None
        return self in (Gate.PUBLIC, Gate.ANY_CREDENTIAL)


def gate(access: Access, op: Operation, principal: Principal) -> Gate:
    """The one order in which an operation's access is decided for a caller (``admit``, the
    change feed's and the parent's read checks, and ``/__admin/why`` all follow it)."""
    if access.public:
        return Gate.PUBLIC
    if not principal.authenticated:
        return Gate.NO_CREDENTIAL
    if principal.apikey_readonly and op.method in WRITE_METHODS:
        return Gate.READ_ONLY_KEY
    if access.rule is None:
        return Gate.ANY_CREDENTIAL if op.security is not None else Gate.NO_RULE
    return Gate.RULE


def context(
    principal: Principal,
    document: Mapping[str, Any] | None = None,
    parent: Mapping[str, Any] | None = None,
) -> AclContext:
    """The rule context of a request."""
    return AclContext(
        claims=principal.claims,
        apikey_readonly=principal.apikey_readonly,
        document=document,
        parent=parent,
    )


def allowed(access: Access, ctx: AclContext) -> bool:
    """Whether the operation's rule allows this context (no rule: credential suffices)."""
    if access.rule is None:
        return True
    return evaluate(access.rule, ctx)


def denies_everything(access: Access, ctx: AclContext) -> bool:
    """Whether the rule fails for this caller whatever the document (403 rather than 404)."""
    if access.rule is None:
        return False
    return decided_without_document(access.rule, ctx) is False


def list_filter(access: Access | None, ctx: AclContext) -> ast.Node:
    """The documents a caller may read, as a query filter (``TRUE`` without a rule)."""
    if access is None or access.rule is None:
        return ast.TRUE
    return to_query(access.rule, ctx)
