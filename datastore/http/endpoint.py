"""What the request path needs per operation, built once at start-up, and per request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from datastore.auth.credentials import ANONYMOUS, Principal
from datastore.blueprint.model import Operation
from datastore.blueprint.schemas import CompiledSchema, SchemaInfo
from datastore.config import Settings
from datastore.documents.service import DocumentService
from datastore.http.security import Access, Authenticator
from datastore.keyvalue import KeyValueService
from datastore.queue import QueueService
from datastore.storage.engine import Database


@dataclass(frozen=True)
class Space:
    """One served space: its name, database, settings and document service."""

    name: str
    db: Database
    settings: Settings
    documents: DocumentService
    keyvalues: KeyValueService
    queues: QueueService
    authenticator: Authenticator


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
