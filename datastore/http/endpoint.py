"""What the request path needs per operation, built once at start-up, and per request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from datastore.auth.credentials import ANONYMOUS, Principal
from datastore.blueprint.model import Kind, Operation
from datastore.blueprint.schemas import CompiledSchema, SchemaInfo
from datastore.changes.service import ChangeService
from datastore.config import Settings
from datastore.documents.service import DocumentService
from datastore.http.routes import RouteTable, declaring
from datastore.http.security import Access, Authenticator
from datastore.keyvalue.service import KeyValueService
from datastore.query.selection import CollectionFacts
from datastore.queue.service import QueueService
from datastore.storage.engine import Database


@dataclass(frozen=True)
class Space:
    """One served space: its name, database, settings and services."""

    name: str
    db: Database
    settings: Settings
    documents: DocumentService
    keyvalues: KeyValueService
    queues: QueueService
    authenticator: Authenticator
    changes: ChangeService


@dataclass(frozen=True)
class Endpoint:
    """An operation with its compiled request schema and its response schema facts."""

    op: Operation
    request_schema: CompiledSchema | None
    request_info: SchemaInfo | None
    response_info: SchemaInfo | None
    handler: Handler
    access: Access
    document_access: Access | None = None
    """For collection endpoints: the rule of the paired document GET (filters listings); for
    document writes: the rule of the same path's GET (a refused write on a document the
    caller may not read answers 404)."""
    document_info: SchemaInfo | None = None
    """For collection endpoints: the facts of the paired document GET's schema."""
    document_schema: CompiledSchema | None = None
    """For collection endpoints: the schema documents are written with (document PUT)."""
    inherits: bool = False
    """Whether documents of this collection may extend others (a schema maps ``$extends``),
    so queries must see inherited values."""
    indexed: frozenset[tuple[str, ...]] = frozenset()
    """For collection endpoints: the fields ``x-datastore-indexes`` indexes for them."""
    view_info: SchemaInfo | None = None
    """The schema facts rules see a document through: the document GET's, so every
    operation's rule sees the document as GET shows it (defaults included)."""
    document_write: Endpoint | None = None
    """For ``_byquery`` endpoints: the document PATCH or DELETE of the collection, whose rule
    selects the documents a by-query write may touch (None: none is declared)."""
    readers: Readers = field(default_factory=lambda: Readers())
    """Who may read which document path: for ``$extends`` targets and parents."""
    facts: CollectionFacts = field(default_factory=CollectionFacts)
    """For collection endpoints: the compiler's facts of the documents its filter and sort
    speak of (defaults as the answer shows them, inheritance, indexes)."""
    rule_facts: CollectionFacts = field(default_factory=CollectionFacts)
    """For collection endpoints: the facts of the documents as its document GET rule sees
    them (the rule's access filter is compiled with these)."""


@dataclass(frozen=True)
class Reader:
    """The operations that read one document path: its document GET and its collection GET
    (None where the blueprint declares none)."""

    document: Endpoint | None
    collection: Endpoint | None


class Readers:
    """Finds the GET operations of a concrete document path (``users/u1/notes``, ``n1``) in
    the space's route table, the way requests are routed (``http/routes.py``). The table is
    bound once every endpoint is built (the endpoints hold their readers)."""

    def __init__(self) -> None:
        self.routes: RouteTable[Endpoint] = RouteTable(())

    def bind(self, routes: RouteTable[Endpoint]) -> None:
        """Use ``routes``, the space's table."""
        self.routes = routes

    def find(self, collection: str, doc_id: str) -> Reader | None:
        """The readers of the document ``doc_id`` of ``collection``, or None (no GET route)."""
        path = f"/{collection}/{doc_id}"
        route = self.routes.match(path, declaring("get", _of_kind(Kind.DOCUMENT)))
        if route is None:
            return None
        parent = self.routes.at(route.shape[:-1], declaring("get", _of_kind(Kind.COLLECTION)))
        return Reader(route.endpoints["get"], parent.endpoints["get"] if parent else None)


def _of_kind(kind: Kind) -> Callable[[Endpoint], bool]:
    return lambda endpoint: endpoint.op.kind is kind


@dataclass
class Call:
    """One request on its way through a handler."""

    endpoint: Endpoint
    space: Space
    request: Request
    path_params: dict[str, Any]
    principal: Principal = ANONYMOUS

    @property
    def op(self) -> Operation:
        """The blueprint operation."""
        return self.endpoint.op

    @property
    def settings(self) -> Settings:
        """The effective settings."""
        return self.space.settings


Handler = Callable[[Call], Awaitable[Response]]
