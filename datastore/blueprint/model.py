"""The read-only blueprint model: every operation of a blueprint, classified once at start-up.

A path's shape decides what it is (SPEC §2): segments alternate collection (literal) and
document (``{param}``); a path ending in a literal is a collection endpoint, in ``{param}`` a
document endpoint; a templated first segment is a dynamic collection (the name comes from the
URL); ``_byquery`` / ``_count`` after a collection and the roots ``keyv`` / ``queue`` are
system endpoints. Nothing here runs per request except the small ``locate`` helpers.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_PARAM = re.compile(r"^\{([^{}]+)\}$")


class Kind(enum.Enum):
    """What an endpoint is, by its path shape."""

    COLLECTION = "collection"
    DOCUMENT = "document"
    BYQUERY = "byquery"
    COUNT = "count"
    KEYV = "keyv"
    KEYV_LIST = "keyv-list"
    KEYV_INCR = "keyv-incr"
    KEYV_DECR = "keyv-decr"
    QUEUE = "queue"
    QUEUE_JOB = "queue-job"
    QUEUE_TOPICS = "queue-topics"
    QUEUE_RETRY = "queue-retry"
    CHANGES = "changes"


@dataclass(frozen=True)
class Segment:
    """One path segment: a literal name, or a parameter (``param`` set)."""

    text: str
    param: str | None = None


def split_path(path: str) -> tuple[Segment, ...]:
    """Split an OpenAPI path template into segments."""
    out = []
    for part in path.strip("/").split("/"):
        match = _PARAM.match(part)
        out.append(Segment(part, match.group(1) if match else None))
    return tuple(out)


def classify(segments: tuple[Segment, ...]) -> Kind | None:
    """The endpoint kind of a path, or None when the shape is not one the datastore serves."""
    if not segments or segments == (Segment(""),):
        return None
    first = segments[0]
    if first.param is None and first.text == "keyv":
        return _classify_keyv(segments)
    if first.param is None and first.text == "queue":
        shapes = {1: Kind.QUEUE_TOPICS, 2: Kind.QUEUE, 3: Kind.QUEUE_JOB}
        if len(segments) in shapes and all(s.param for s in segments[1:]):
            return shapes[len(segments)]
        if len(segments) == 4 and segments[1].param and segments[2].param:
            return Kind.QUEUE_RETRY if segments[3] == Segment("_retry") else None
        return None
    last = segments[-1]
    system = {"_byquery": Kind.BYQUERY, "_count": Kind.COUNT, "_changes": Kind.CHANGES}
    if last.param is None and last.text in system:
        body = segments[:-1]
        return system[last.text] if _alternates(body) and _is_collection(body) else None
    if not _alternates(segments):
        return None
    return Kind.COLLECTION if _is_collection(segments) else Kind.DOCUMENT


def _classify_keyv(segments: tuple[Segment, ...]) -> Kind | None:
    if len(segments) == 1:
        return Kind.KEYV_LIST
    if not segments[1].param:
        return None
    if len(segments) == 2:
        return Kind.KEYV
    if len(segments) == 3 and segments[2].param is None:
        return {"_incr": Kind.KEYV_INCR, "_decr": Kind.KEYV_DECR}.get(segments[2].text)
    return None


def _alternates(segments: tuple[Segment, ...]) -> bool:
    """Collections at even positions (literal, or a templated first segment), ids at odd."""
    for index, segment in enumerate(segments):
        if index % 2 == 1 and segment.param is None:
            return False
        if index % 2 == 0 and index > 0 and segment.param is not None:
            return False
        if index % 2 == 0 and segment.param is None and segment.text.startswith("_"):
            return False
    return True


def _is_collection(segments: tuple[Segment, ...]) -> bool:
    return len(segments) % 2 == 1


ALLOWED_METHODS: Mapping[Kind, frozenset[str]] = {
    Kind.COLLECTION: frozenset({"get", "post"}),
    Kind.DOCUMENT: frozenset({"get", "put", "patch", "delete"}),
    Kind.BYQUERY: frozenset({"patch", "delete"}),
    Kind.COUNT: frozenset({"get"}),
    Kind.CHANGES: frozenset({"get"}),
    Kind.KEYV: frozenset({"get", "put", "delete"}),
    Kind.KEYV_LIST: frozenset({"get"}),
    Kind.KEYV_INCR: frozenset({"put"}),
    Kind.KEYV_DECR: frozenset({"put"}),
    Kind.QUEUE: frozenset({"get", "post"}),
    Kind.QUEUE_JOB: frozenset({"get"}),
    Kind.QUEUE_TOPICS: frozenset({"get"}),
    Kind.QUEUE_RETRY: frozenset({"post"}),
}


@dataclass(frozen=True)
class Response:
    """One declared response: its status code and its JSON schema (None: no body declared)."""

    status: int
    schema: dict[str, Any] | None
    has_content: bool


@dataclass(frozen=True)
class Operation:
    """One blueprint operation, everything the request path needs precomputed."""

    operation_id: str
    method: str
    path: str
    kind: Kind
    segments: tuple[Segment, ...]
    acl: str | None
    security: tuple[dict[str, Any], ...] | None
    request_schema: dict[str, Any] | None
    request_content_types: tuple[str, ...]
    responses: tuple[Response, ...]
    extensions: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dynamic(self) -> bool:
        """Whether the collection name comes from the URL (``/{collection}``)."""
        return self.segments[0].param is not None

    @property
    def success_responses(self) -> tuple[Response, ...]:
        """The declared 2xx responses."""
        return tuple(r for r in self.responses if 200 <= r.status < 300)

    def response_for(self, natural: int) -> Response | None:
        """The declared response that answers a request whose natural status is ``natural``.

        When exactly one 2xx is declared it is used whatever the natural code; otherwise the
        natural code's declaration, if any.
        """
        success = self.success_responses
        if len(success) == 1:
            return success[0]
        for response in success:
            if response.status == natural:
                return response
        return None

    def body_schema(self) -> dict[str, Any] | None:
        """The schema of the documents this operation answers with (list items unwrapped)."""
        for response in self.success_responses:
            schema = response.schema
            if schema is None:
                continue
            if self.kind is Kind.COLLECTION and self.method == "get":
                items = schema.get("items")
                return items if isinstance(items, dict) else None
            return schema
        return None

    def locate(self, path_params: Mapping[str, str]) -> tuple[str, str | None]:
        """The collection path and document id this request addresses.

        ``/users/{userid}/events/{eventid}`` with ``userid=u1, eventid=e1`` gives
        ``("users/u1/events", "e1")``; a collection endpoint gives ``(path, None)``.
        """
        segments = self.segments
        if self.kind in (Kind.BYQUERY, Kind.COUNT, Kind.CHANGES):
            segments = segments[:-1]
        parts = [path_params[s.param] if s.param else s.text for s in segments]
        if len(parts) % 2 == 1:
            return "/".join(parts), None
        return "/".join(parts[:-1]), parts[-1]


@dataclass(frozen=True)
class Blueprint:
    """A whole blueprint: the bundled document and its operations by operation id."""

    document: dict[str, Any]
    operations: Mapping[str, Operation]

    @property
    def openapi_version(self) -> str:
        """The ``openapi`` version string the blueprint declares."""
        return str(self.document.get("openapi", "3.0.0"))


def follow_refs(document: dict[str, Any], node: Any) -> Any:
    """``node``, or what its internal ``$ref`` chain points to (unresolvable: ``node``)."""
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 32:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return node
        target: Any = document
        for raw in ref[2:].split("/"):
            token = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and token in target:
                target = target[token]
            elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
                target = target[int(token)]
            else:
                return node
        node = target
        seen += 1
    return node


def operation_id(method: str, path: str) -> str:
    """The unique operation id the datastore gives every operation: ``"get /events/{id}"``."""
    return f"{method} {path}"


def build_blueprint(document: dict[str, Any], resolve: Any = None) -> Blueprint:
    """Classify every operation of a bundled blueprint document.

    ``resolve`` turns a ``$ref``'d schema into the referenced one (identity when None). Paths
    whose shape the datastore does not serve are skipped here; the linter reports them.
    """
    resolver = resolve or (lambda node: follow_refs(document, node))
    global_security = document.get("security")
    operations: dict[str, Operation] = {}
    for path, item in (document.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        segments = split_path(path)
        kind = classify(segments)
        if kind is None:
            continue
        for method in HTTP_METHODS:
            spec = item.get(method)
            if not isinstance(spec, dict):
                continue
            op_id = operation_id(method, path)
            operations[op_id] = _build_operation(
                op_id, method, path, kind, segments, spec, global_security, resolver
            )
    return Blueprint(document=document, operations=operations)


def _build_operation(
    op_id: str,
    method: str,
    path: str,
    kind: Kind,
    segments: tuple[Segment, ...],
    spec: dict[str, Any],
    global_security: Any,
    resolve: Any,
) -> Operation:
    security = spec.get("security", global_security)
    request_schema = None
    content_types: tuple[str, ...] = ()
    body = spec.get("requestBody")
    if isinstance(body, dict):
        body = resolve(body)
        content = body.get("content") or {}
        content_types = tuple(content)
        for media_type, media in content.items():
            if "json" in media_type and isinstance(media, dict) and "schema" in media:
                request_schema = resolve(media["schema"])
                break
    responses = []
    for code, response in (spec.get("responses") or {}).items():
        if not str(code).isdigit():
            continue
        response = resolve(response) if isinstance(response, dict) else {}
        content = response.get("content") or {}
        schema = None
        for media_type, media in content.items():
            if "json" in media_type and isinstance(media, dict) and "schema" in media:
                schema = resolve(media["schema"])
                break
        responses.append(Response(int(code), schema, bool(content)))
    acl = spec.get("x-datastore-acl")
    return Operation(
        operation_id=op_id,
        method=method,
        path=path,
        kind=kind,
        segments=segments,
        acl=str(acl) if acl is not None else None,
        security=tuple(security) if isinstance(security, list) else None,
        request_schema=request_schema,
        request_content_types=content_types,
        responses=tuple(sorted(responses, key=lambda r: r.status)),
        extensions={k: v for k, v in spec.items() if k.startswith("x-")},
    )
