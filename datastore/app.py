"""Building the ASGI application: blueprints in, a connexion-fronted datastore out.

Everything is prepared once here: blueprints loaded and checked, schemas compiled, endpoints
bound to generic handlers, the database migrated. connexion runs as middleware (routing,
parameter and content-type validation) around our dispatcher, which is faster than connexion's
AsyncApp (no per-request handler wrapping) and lets one code path shape every response.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from connexion import ConnexionMiddleware
from connexion.exceptions import ProblemException
from connexion.middleware.exceptions import ExceptionMiddleware
from connexion.middleware.lifespan import LifespanMiddleware
from connexion.middleware.request_validation import RequestValidationMiddleware
from connexion.middleware.server_error import ServerErrorMiddleware
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from datastore.auth.apikeys import ApiKeyStore
from datastore.auth.credentials import CredentialConfigError, JwtSettings, JwtVerifier
from datastore.blueprint.loader import connexion_view, dump_yaml, load_blueprint
from datastore.blueprint.model import Blueprint, Kind, Operation, build_blueprint
from datastore.blueprint.publish import published_document
from datastore.blueprint.schemas import SchemaCompiler
from datastore.blueprint.system import effective_document
from datastore.changes.service import ChangeService
from datastore.changes.signals import end_streams_on_signals
from datastore.config import DEV_SECRET, ConfigError, Settings
from datastore.documents.service import DocumentService
from datastore.errors import DatastoreError
from datastore.http.admin import admin_routes
from datastore.http.changes import Sequencing
from datastore.http.consistency import HEADER as CONSISTENCY_HEADER
from datastore.http.consistency import Consistency
from datastore.http.dispatch import (
    Dispatcher,
    MountedSpace,
    SpaceRoute,
    SystemRoute,
    SystemRoutes,
    best_route,
    system_table,
)
from datastore.http.docs_ui import asset as docs_asset
from datastore.http.docs_ui import page_route
from datastore.http.endpoint import Endpoint, Readers, Space
from datastore.http.health import dev_token_route, health_route
from datastore.http.observability import Metrics, Observability
from datastore.http.problems import connexion_problem_handler, datastore_error_handler
from datastore.http.registry import handler_for
from datastore.http.resources import read_collections
from datastore.http.routes import RouteTable
from datastore.http.sdk import sdk_route
from datastore.http.security import Authenticator, access_for
from datastore.http.segment_routes import SegmentRoutingMiddleware
from datastore.http.shaping import json_response
from datastore.http.validation import NamedParameterValidator
from datastore.keyvalue.service import KeyValueService, purge_forever
from datastore.query.selection import CollectionFacts
from datastore.queue.service import QueueService
from datastore.storage.engine import Database, default_sqlite_url
from datastore.storage.indexes import ensure_indexes, index_specs

logger = logging.getLogger("datastore")
CONNEXION_MIDDLEWARES = [
    ServerErrorMiddleware,
    ExceptionMiddleware,
    SegmentRoutingMiddleware,
    RequestValidationMiddleware,
    LifespanMiddleware,
]
"""The connexion layers the datastore uses: routing (its routes grouped by first segment,
``http/segment_routes.py``) and parameter validation (plus their error handling and the
lifespan). Left out, because the datastore does that work itself or
not at all: Swagger UI (``/ui``), security (``http/security.py``), response validation and
connexion's request context. Each left-out layer cost a few percent of a GET's CPU."""


@dataclass(frozen=True)
class ServedBlueprint:
    """A blueprint to serve: its space name and its bundled document."""

    space: str
    document: dict[str, Any]


class _OperationIdResolver(Resolver):  # type: ignore[misc]
    """Gives every operation the id ``"<method> <path>"``; the dispatcher does the rest."""

    def resolve_operation_id(self, operation: Any) -> str:
        return f"{operation.method} {operation.path}"

    def resolve_function_from_operation_id(self, operation_id: str) -> Any:
        return _unused_handler


def _unused_handler() -> None:  # pragma: no cover - connexion needs a callable per operation
    return None


def serve_blueprint_file(path: str | Path, space: str = "default") -> ServedBlueprint:
    """Load a blueprint file for serving; raises BlueprintError listing every problem."""
    loaded = load_blueprint(path)
    return ServedBlueprint(space=space, document=loaded.document)


def build_endpoints(blueprint: Blueprint) -> tuple[dict[str, Endpoint], RouteTable[Endpoint]]:
    """Bind every operation to its handler with its schemas compiled and its access rule
    parsed, and build the space's route table; collection endpoints get the rule of their
    document GET to filter listings, and ``_byquery`` endpoints the document PATCH or DELETE
    whose rule selects what they touch."""
    compiler = SchemaCompiler(blueprint.document, openapi_version=blueprint.openapi_version)
    endpoints = {op_id: _endpoint(op, compiler) for op_id, op in blueprint.operations.items()}
    document_ops = {
        (_shape(e.op), e.op.method): e for e in endpoints.values() if e.op.kind is Kind.DOCUMENT
    }
    inheriting = {
        _collection_shape(e.op)
        for e in endpoints.values()
        for info in (e.request_info, e.response_info)
        if info is not None and "$extends" in info.sources.values()
    }
    specs = index_specs(blueprint.document)
    for op_id, endpoint in endpoints.items():
        collection = _collection_shape(endpoint.op)
        get = document_ops.get(((*collection, "{}"), "get"))
        endpoint = replace(
            endpoint,
            inherits=collection in inheriting,
            view_info=get.response_info if get else endpoint.request_info or endpoint.response_info,
        )
        if endpoint.op.kind is Kind.DOCUMENT and endpoint.op.method != "get":
            endpoint = replace(endpoint, document_access=get.access if get else None)
        if endpoint.op.kind in (Kind.COLLECTION, Kind.BYQUERY, Kind.COUNT, Kind.CHANGES):
            put = document_ops.get(((*collection, "{}"), "put"))
            name = collection[0] if len(collection) == 1 and collection[0] != "{}" else None
            endpoint = replace(
                endpoint,
                document_access=get.access if get else None,
                document_info=get.response_info if get else None,
                document_schema=put.request_schema if put else None,
                indexed=frozenset(spec.path for spec in specs if spec.collection in (None, name)),
            )
        if endpoint.op.kind is Kind.BYQUERY:
            write = document_ops.get(((*collection, "{}"), endpoint.op.method))
            endpoint = replace(endpoint, document_write=write)
        endpoints[op_id] = _with_facts(endpoint)
    readers = Readers()
    built = {op_id: replace(e, readers=readers) for op_id, e in endpoints.items()}
    routes = route_table(built)
    readers.bind(routes)
    return built, routes


def route_table(endpoints: Mapping[str, Endpoint]) -> RouteTable[Endpoint]:
    """The space's one route table (``http/routes.py``): every endpoint by its path template
    and method."""
    return RouteTable.of((e.op.path, e.op.method, e) for e in endpoints.values())


def _with_facts(endpoint: Endpoint) -> Endpoint:
    """The compiler's facts of a collection endpoint's documents: as its answer shows them
    (a listing: the response schema first; a count or by-query write: the document schema
    first) and as its document GET rule sees them."""
    if endpoint.op.kind not in (Kind.COLLECTION, Kind.BYQUERY, Kind.COUNT, Kind.CHANGES):
        return endpoint
    document, response = endpoint.document_info, endpoint.response_info
    info = (response or document) if endpoint.op.kind is Kind.COLLECTION else (document or response)
    return replace(
        endpoint,
        facts=CollectionFacts(
            info.default_paths if info is not None else None,
            inherits=endpoint.inherits,
            indexed=endpoint.indexed,
        ),
        rule_facts=CollectionFacts(
            document.default_paths if document is not None else None, inherits=endpoint.inherits
        ),
    )


def _shape(op: Operation) -> tuple[str, ...]:
    return tuple("{}" if s.param else s.text for s in op.segments)


def _collection_shape(op: Operation) -> tuple[str, ...]:
    """The shape of the collection an operation works on (``/a/{}/b`` for ``/a/{x}/b/{y}``)."""
    shape = _shape(op)
    trailing = (Kind.BYQUERY, Kind.COUNT, Kind.CHANGES, Kind.DOCUMENT)
    return shape[:-1] if op.kind in trailing else shape


def _endpoint(op: Operation, compiler: SchemaCompiler) -> Endpoint:
    request = compiler.compile(op.request_schema) if op.request_schema is not None else None
    body_schema = op.body_schema()
    response = compiler.compile(body_schema) if body_schema is not None else None
    return Endpoint(
        op=op,
        request_schema=request,
        request_info=request.info if request is not None else None,
        response_info=response.info if response is not None else None,
        handler=handler_for(op.kind, op.method),
        access=access_for(op),
    )


def jwt_verifier(settings: Settings) -> JwtVerifier | None:
    """The token verifier the settings configure (the dev secret under ``--dev``)."""
    public_key = None
    if settings.jwt_public_key:
        try:
            public_key = Path(settings.jwt_public_key).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read the JWT public key: {exc}") from exc
    secret = settings.jwt_secret or (DEV_SECRET if settings.dev else None)
    jwt_settings = JwtSettings(
        secret=secret,
        public_key_pem=public_key,
        jwks=settings.jwks or None,
        audience=settings.jwt_audience or None,
        issuer=settings.jwt_issuer or None,
        leeway_seconds=settings.jwt_leeway,
        require_exp=not settings.jwt_allow_no_exp,
    )
    if not jwt_settings.configured:
        return None
    try:
        return JwtVerifier(jwt_settings)
    except CredentialConfigError as exc:
        raise ConfigError(str(exc)) from exc


def open_database(settings: Settings) -> Database:
    """The configured database (migrated when ``settings.migrate``)."""
    db = Database(
        settings.database_url or default_sqlite_url(),
        pool_size=settings.pool_size,
        statement_timeout_ms=settings.statement_timeout_ms,
        pooler=settings.database_pooler,
        read_url=settings.read_database,
    )
    if settings.migrate:
        from datastore.storage import migrate  # Alembic: a tenth of start-up, only to migrate

        migrate.upgrade(db)
    return db


def create_app(
    settings: Settings,
    blueprints: Sequence[ServedBlueprint],
    *,
    database: Database | None = None,
    mount_at_root: bool | None = None,
) -> Any:
    """The ASGI app serving ``blueprints``: one space each, mounted at ``/<space>`` (or at
    ``/`` when there is a single blueprint and ``mount_at_root`` is not False)."""
    db = database or open_database(settings)
    if database is None:  # a server starting (not a test's app): remember what it serves
        from datastore.evolve.served import remember

        remember(db, [(served.space, served.document) for served in blueprints], logger)
    at_root = len(blueprints) == 1 if mount_at_root is None else mount_at_root
    authenticator = Authenticator(jwt_verifier(settings), ApiKeyStore(db))
    spaces = [_prepare_space(served, settings, db, at_root, database) for served in blueprints]
    changes = ChangeService(db, settings)
    mounts = _mounts(spaces, settings, db, authenticator, changes)
    metrics = Metrics(db)
    layers = middleware_stack(settings, db, spaces, mounts, metrics, database, changes)
    app: Any = Dispatcher(mounts)
    for layer in reversed(layers):
        app = layer(app)
    return app


@dataclass(frozen=True)
class _Prepared:
    """One blueprint ready to mount: where, its effective and published documents, its model."""

    served: ServedBlueprint
    base_path: str
    document: dict[str, Any]
    blueprint: Blueprint
    published: dict[str, Any]


def _prepare_space(
    served: ServedBlueprint,
    settings: Settings,
    db: Database,
    at_root: bool,
    database: Database | None,
) -> _Prepared:
    """Step 1: a blueprint's effective document (system endpoints added), model, published
    document, and indexes."""
    base_path = "" if at_root else f"/{served.space}"
    document = effective_document(served.document)
    blueprint = build_blueprint(document)
    published = published_document(
        document,
        blueprint,
        base_path,
        max_limit=settings.max_limit,
        max_wait=settings.changes_max_wait,
    )
    if settings.migrate or database is None:
        ensure_indexes(db, index_specs(document))
    return _Prepared(served, base_path, document, blueprint, published)


def _mounts(
    spaces: Sequence[_Prepared],
    settings: Settings,
    db: Database,
    authenticator: Authenticator,
    changes: ChangeService,
) -> dict[str, MountedSpace]:
    """Step 2: every space with its services, endpoints and route table, by base path."""
    mounts: dict[str, MountedSpace] = {}
    for prepared in spaces:
        name = prepared.served.space
        space = Space(
            name,
            db,
            settings,
            DocumentService(db, name),
            KeyValueService(db, name),
            QueueService(db, name, max_attempts=settings.queue_max_attempts),
            authenticator,
            changes,
        )
        endpoints, routes = build_endpoints(prepared.blueprint)
        mounts[prepared.base_path] = MountedSpace(prepared.base_path, space, endpoints, routes)
    return mounts


Layer = Callable[[Any], Any]
"""A middleware: wraps the app inside it."""


def middleware_stack(
    settings: Settings,
    db: Database,
    spaces: Sequence[_Prepared],
    mounts: Mapping[str, MountedSpace],
    metrics: Metrics,
    database: Database | None,
    changes: ChangeService,
) -> list[Layer]:
    """Step 3: the middleware around the dispatcher, outermost first: CORS (when configured),
    observability, the system routes, connexion."""
    names = {m.base_path: m.space.name for m in mounts.values()}
    layers: list[Layer] = [
        lambda app: Observability(app, metrics, names),
        lambda app: SystemRoutes(app, _system_routes(settings, db, spaces, mounts, metrics)),
        lambda app: _connexion(app, spaces, mounts, db, database, changes),
    ]
    if db.replica is not None:
        layers.insert(1, lambda app: Consistency(app, db.position))
    if db.backend.sequenced_changes:
        layers.insert(-1, lambda app: Sequencing(app, changes))
    if settings.cors_origin:
        layers.insert(0, lambda app: cors(app, settings, [p.document for p in spaces]))
    return layers


def _system_routes(
    settings: Settings,
    db: Database,
    spaces: Sequence[_Prepared],
    mounts: Mapping[str, MountedSpace],
    metrics: Metrics,
) -> RouteTable[SystemRoute]:
    """The datastore's own endpoints, answered before the blueprint's routes."""
    published = {prepared.base_path: prepared.published for prepared in spaces}

    async def openapi_route(request: Request, mount: MountedSpace) -> Response:
        """``GET /openapi.json``: the effective document (blueprint plus system endpoints), with
        the datastore's error responses and parameter rules (``blueprint/publish.py``)."""
        return json_response(published[mount.base_path])

    async def openapi_yaml_route(request: Request, mount: MountedSpace) -> Response:
        """``GET /openapi.yaml``: the same document as YAML."""
        return Response(dump_yaml(published[mount.base_path]), media_type="application/yaml")

    system: dict[str, SystemRoute] = {
        "/__health": health_route(db),
        "/__metrics": metrics.endpoint,
        "/__ui/{asset:path}": docs_asset,
        "/__sdk/datastore.js": sdk_route(),
    }
    if settings.dev:
        system["/__jwt"] = dev_token_route(settings.jwt_secret or DEV_SECRET)
    titles = {
        base: str((document.get("info") or {}).get("title", "Datastore"))
        for base, document in published.items()
    }
    per_space: dict[str, SpaceRoute] = {
        "/__resources/collections": read_collections,
        "/openapi.json": openapi_route,
        "/openapi.yaml": openapi_yaml_route,
        "/ui": page_route(titles),
    }
    names = {base: (mount.space.name, titles[base]) for base, mount in mounts.items()}
    admin_system, admin_space = admin_routes(settings.admin or settings.dev, settings.dev, names)
    system.update(admin_system)
    per_space.update(admin_space)
    return system_table(mounts, system, per_space)


def _connexion(
    dispatcher: Any,
    spaces: Sequence[_Prepared],
    mounts: Mapping[str, MountedSpace],
    db: Database,
    database: Database | None,
    changes: ChangeService,
) -> ConnexionMiddleware:
    """connexion around the dispatcher: routing and parameter validation of every space, the
    lifespan, and the problem renderers (a 405 carries the best route's ``Allow``)."""
    app = ConnexionMiddleware(
        dispatcher,
        lifespan=_lifespan(db, database, changes),
        middlewares=CONNEXION_MIDDLEWARES,
        swagger_ui_options=SwaggerUIOptions(swagger_ui=False, serve_spec=False),
    )
    for prepared in spaces:
        app.add_api(
            connexion_view(prepared.document),
            base_path=prepared.base_path or None,
            resolver=_OperationIdResolver(),
            strict_validation=False,
            validate_responses=False,
            # Bodies are parsed and validated by the datastore itself (every error at once,
            # schemas compiled once); an empty body map makes connexion skip its own.
            validator_map={"body": {}, "parameter": NamedParameterValidator},
        )
    app.add_error_handler(DatastoreError, datastore_error_handler)

    async def problem_with_allow(request: Any, exc: Exception) -> Any:
        response = await connexion_problem_handler(request, exc)
        if response.status_code == 405:
            found = best_route(mounts, str(request.url.path))
            if found is not None:
                response.headers["Allow"] = ", ".join(found.methods)
        return response

    app.add_error_handler(ProblemException, problem_with_allow)
    app.add_error_handler(HTTPException, problem_with_allow)
    return app


def _lifespan(
    db: Database, database: Database | None, changes: ChangeService
) -> Callable[[Any], Any]:
    """The app's lifespan: the key-value purger, the change log's retention, the async pool;
    the database disposed of when the app opened it. Change streams end on SIGTERM / SIGINT
    (``end_streams_on_signals``), so open streams do not hold up a graceful shutdown."""

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        purger = asyncio.create_task(purge_forever(db))
        retention = asyncio.create_task(changes.retain_forever())
        restore = end_streams_on_signals(changes)
        changes.start()
        if db.async_store is not None:
            await db.async_store.open()
        try:
            yield
        finally:
            restore()
            await changes.shutdown()
            retention.cancel()
            purger.cancel()
            if db.async_store is not None:
                await db.async_store.close()
            if database is None:
                db.dispose()

    return lifespan


def cors(app: Any, settings: Settings, documents: Sequence[dict[str, Any]]) -> Any:
    """Wrap ``app`` in CORS handling for the configured origins; ``*`` only when every operation
    of every blueprint is public (a wildcard must not open protected data to any site)."""
    from starlette.middleware.cors import CORSMiddleware

    origins = [o.strip() for o in settings.cors_origin.split(",") if o.strip()]
    if "*" in origins:
        for document in documents:
            for op in build_blueprint(document).operations.values():
                if (op.acl or "").strip().lower() != "public":
                    raise ConfigError(
                        "--cors-origin '*' is allowed only for blueprints whose operations "
                        f"are all public ({op.method.upper()} {op.path} is not)"
                    )
    return CORSMiddleware(
        app,
        allow_origins=origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "x-apikey",
            "If-Match",
            "If-None-Match",
            "X-Request-Id",
            CONSISTENCY_HEADER,
            "Last-Event-ID",
        ],
        expose_headers=["ETag", "Location", "X-Request-Id", CONSISTENCY_HEADER],
        max_age=600,
    )
