"""System endpoints the datastore adds to a blueprint that opts into their family.

A blueprint that declares ``GET /keyv/{key}`` also gets ``GET /keyv`` (list by prefix), and one
that declares ``POST /queue/{topic}`` gets ``GET /queue/{topic}/{id}`` (job status), each with
the same access rule or security as the operation it derives from; it also gets the operators'
``GET /queue``, ``GET /queue/{topic}`` and ``POST /queue/{topic}/{id}/_retry``, whose rules are
their own (API keys: ``OPERATORS``, ``RETRIERS``), never the enqueue's. Every collection with a
document GET gets ``GET <collection>/_changes``, its change feed (docs/changes.md), with the
rule and security of the collection GET (or, without one, the document GET's security). The
result is the *effective* document: the blueprint plus these endpoints, which is what is
routed, validated and published.
"""

from __future__ import annotations

import copy
from typing import Any

from datastore.blueprint.model import Kind, classify, follow_refs, split_path
from datastore.types import JOB_STATUSES


def _json_answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A response with a JSON body of ``schema``."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


KEYV_LIST: dict[str, Any] = {
    "operationId": "datastoreListKeys",
    "summary": "List keys by prefix",
    "description": (
        "Live keys whose name starts with `prefix`, with their values and expiry, in key order."
    ),
    "parameters": [
        {"name": "prefix", "in": "query", "schema": {"type": "string"}},
        {"name": "keyspace", "in": "query", "schema": {"type": "string"}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    ],
    "responses": {
        "200": _json_answer(
            "The matching keys and values",
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "key": {"type": "string"},
                        "value": {},
                        "expiresAt": {
                            "type": ["string", "null"],
                            "format": "date-time",
                            "description": "When the key expires (null: never)",
                        },
                    },
                },
            },
        )
    },
}

JOB_STATUS: dict[str, Any] = {
    "operationId": "datastoreJobStatus",
    "summary": "Read a job's status",
    "description": "Status (queued, running, done, dead), attempts and the last error.",
    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
    "responses": {
        "200": _json_answer(
            "The job",
            {
                "type": "object",
                "properties": {
                    "_id": {"type": "string"},
                    "topic": {"type": "string"},
                    "status": {"enum": list(JOB_STATUSES)},
                    "attempts": {"type": "integer"},
                    "maxAttempts": {"type": "integer"},
                    "lastError": {"type": ["string", "null"]},
                },
            },
        ),
        "404": {"description": "No such job"},
    },
}

_COUNTS: dict[str, Any] = {
    "type": "object",
    "description": "Jobs by status",
    "properties": {status: {"type": "integer", "minimum": 0} for status in JOB_STATUSES},
}
_JOB: dict[str, Any] = JOB_STATUS["responses"]["200"]["content"]["application/json"]["schema"]
OPERATORS = "apikey.readonly === true || apikey.readonly === false"
"""The rule of the queue listings the datastore adds: any API key of the space (read-only
ones too), never a JWT, whatever its claims. API keys are made with ``datastore keys add``,
by whoever runs the datastore; tokens are for end users, who may enqueue but must not read
other users' payloads or errors."""
RETRIERS = "apikey.readonly === false"
"""The rule of the retry the datastore adds: an API key that may write."""
QUEUE_TOPICS: dict[str, Any] = {
    "operationId": "datastoreListQueues",
    "summary": "Queues and their jobs by status",
    "description": (
        "Every topic of the space that holds jobs, with its jobs counted by status. Callers: "
        "an API key of the space (declare `GET /queue` with a rule of your own to change that)."
    ),
    "x-datastore-acl": OPERATORS,
    "responses": {
        "200": _json_answer(
            "The topics, by name",
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"topic": {"type": "string"}, "counts": _COUNTS},
                },
            },
        )
    },
}
QUEUE_SUMMARY: dict[str, Any] = {
    "operationId": "datastoreQueueSummary",
    "summary": "A queue: its jobs by status and its dead letters",
    "description": (
        "The topic's jobs counted by status, and its dead jobs (newest first, at most `limit`) "
        "with their last error. Callers: an API key of the space."
    ),
    "x-datastore-acl": OPERATORS,
    "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}}],
    "responses": {
        "200": _json_answer(
            "Counts and dead letters",
            {
                "type": "object",
                "properties": {
                    "topic": {"type": "string"},
                    "counts": _COUNTS,
                    "dead": {"type": "array", "items": _JOB},
                },
            },
        )
    },
}
QUEUE_RETRY: dict[str, Any] = {
    "operationId": "datastoreRetryJob",
    "summary": "Retry a dead job",
    "description": (
        "Queue a dead job again, now, with its attempts reset (its last error is kept until "
        "the next attempt). Callers: an API key of the space that may write."
    ),
    "x-datastore-acl": RETRIERS,
    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
    "responses": {
        "200": _json_answer("The job, queued again", _JOB),
        "404": {"description": "No such job in the topic"},
        "409": {"description": "The job is not dead"},
    },
}

CHANGE_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "event"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The cursor"},
        "event": {"enum": ["created", "updated", "deleted"]},
        "data": {
            "type": "object",
            "description": 'The document as its GET shows it; {"id": ...} for a deletion',
        },
    },
}

CHANGES: dict[str, Any] = {
    "summary": "Follow the collection's changes",
    "description": (
        "The changes of the collection's documents the caller may read, in order, from the "
        "cursor `since` (or the `Last-Event-ID` header). With `Accept: text/event-stream`: "
        "Server-Sent Events, one per change, until the token expires. Otherwise one JSON "
        "page, waiting up to `wait` seconds for a first change. A cursor older than the "
        "retained log is 410: read the collection again and follow from `next`."
    ),
    "responses": {
        "200": {
            "description": "Changes",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["changes", "next"],
                        "properties": {
                            "changes": {"type": "array", "items": CHANGE_EVENT},
                            "next": {"type": "string", "pattern": "^[0-9]+$"},
                        },
                    }
                },
                "text/event-stream": {"schema": {"type": "string"}},
            },
        }
    },
}

_INHERITED = ("x-datastore-acl", "security", "tags")


def _derived(source: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    operation = copy.deepcopy(template)
    operation.update({k: copy.deepcopy(source[k]) for k in _INHERITED if k in source})
    return operation


def _path_parameters(document: dict[str, Any], *sources: Any) -> list[Any]:
    """The path parameters ``sources`` declare, as declared (references kept)."""
    found = []
    for source in sources:
        for raw in source.get("parameters", []) if isinstance(source, dict) else ():
            resolved = follow_refs(document, raw)
            if isinstance(resolved, dict) and resolved.get("in") == "path":
                found.append((str(resolved.get("name")), copy.deepcopy(raw)))
    return _unique(found)


def _unique(found: list[tuple[str, Any]]) -> list[Any]:
    """The last declaration of each name (an operation's overrides its path item's)."""
    by_name: dict[str, Any] = {}
    for name, raw in found:
        by_name[name] = raw
    return list(by_name.values())


def _changes_feed(
    document: dict[str, Any], document_path: str, paths: dict[str, Any]
) -> tuple[str, dict[str, Any]] | None:
    """``GET <collection>/_changes`` for a document path with a GET, when the path is a
    document path and the feed is not declared already."""
    segments = document_path.strip("/").split("/")
    item = paths.get(document_path)
    if classify(split_path(document_path)) is not Kind.DOCUMENT:
        return None
    if not isinstance(item, dict) or not isinstance(item.get("get"), dict):
        return None
    collection_path = "/" + "/".join(segments[:-1])
    feed_path = collection_path + "/_changes"
    if feed_path in paths:
        return None
    collection = paths.get(collection_path)
    listing = collection.get("get") if isinstance(collection, dict) else None
    if isinstance(listing, dict):
        operation = _derived(listing, CHANGES)
        params = _path_parameters(document, collection, listing)
    else:
        source = {k: v for k, v in item["get"].items() if k in ("security", "tags")}
        if str(item["get"].get("x-datastore-acl", "")).strip().lower() == "public":
            source["x-datastore-acl"] = "public"
        operation = _derived(source, CHANGES)
        last = segments[-1][1:-1]
        params = [
            raw
            for raw in _path_parameters(document, item, item["get"])
            if (follow_refs(document, raw) or {}).get("name") != last
        ]
    if params:
        operation["parameters"] = params
    return feed_path, {"get": operation}


def _queue_operators(
    path: str, item: dict[str, Any], topic_params: list[Any], paths: dict[str, Any]
) -> dict[str, Any]:
    """The operators' queue endpoints for ``POST /queue/{topic}``: ``GET /queue`` (topics),
    ``GET /queue/{topic}`` (counts, dead letters), ``POST /queue/{topic}/{id}/_retry``; each
    with its own rule (``OPERATORS``, ``RETRIERS``), not the enqueue's: whoever may enqueue
    may not thereby read every job. Declared ones are left as declared."""
    added: dict[str, Any] = {}
    tags = {"tags": copy.deepcopy(item["post"]["tags"])} if "tags" in item["post"] else {}
    if "/queue" not in paths:
        added["/queue"] = {"get": {**copy.deepcopy(QUEUE_TOPICS), **tags}}
    if "get" not in item:
        summary = {**copy.deepcopy(QUEUE_SUMMARY), **tags}
        summary["parameters"] = copy.deepcopy(topic_params) + summary["parameters"]
        added[path] = {**item, "get": summary}
    retry_path = f"{path}/{{id}}/_retry"
    if retry_path not in paths:
        retry = {**copy.deepcopy(QUEUE_RETRY), **tags}
        retry["parameters"] = copy.deepcopy(topic_params) + retry["parameters"]
        added[retry_path] = {"post": retry}
    return added


def effective_document(document: dict[str, Any]) -> dict[str, Any]:
    """The blueprint plus the system endpoints its declarations imply (a new dict)."""
    paths = document.get("paths") or {}
    additions: dict[str, Any] = {}
    for path in paths:
        feed = _changes_feed(document, str(path), paths)
        if feed is not None:
            additions[feed[0]] = feed[1]
    for path, item in paths.items():
        parts = path.strip("/").split("/")
        if len(parts) != 2 or not isinstance(item, dict) or not parts[1].startswith("{"):
            continue
        get, post = item.get("get"), item.get("post")
        if parts[0] == "keyv" and isinstance(get, dict) and "/keyv" not in paths:
            additions["/keyv"] = {"get": _derived(get, KEYV_LIST)}
        job_path = f"{path}/{{id}}"
        if parts[0] == "queue" and isinstance(post, dict) and job_path not in paths:
            status = _derived(post, JOB_STATUS)
            topic_params = [
                p
                for p in item.get("parameters", []) + post.get("parameters", [])
                if isinstance(p, dict) and p.get("in") == "path"
            ]
            status["parameters"] = copy.deepcopy(topic_params) + status["parameters"]
            additions[job_path] = {"get": status}
            additions.update(_queue_operators(path, item, topic_params, paths))
    if not additions:
        return document
    result = dict(document)
    result["paths"] = {**paths, **additions}
    return result
