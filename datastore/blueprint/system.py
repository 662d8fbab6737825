"""System endpoints the datastore adds to a blueprint that opts into their family.

A blueprint that declares ``GET /keyv/{key}`` also gets ``GET /keyv`` (list by prefix), and one
that declares ``POST /queue/{topic}`` gets ``GET /queue/{topic}/{id}`` (job status), each with
the same access rule or security as the operation it derives from. The result is the
*effective* document: the blueprint plus these endpoints, which is what is routed, validated
and published.
"""

from __future__ import annotations

import copy
from typing import Any

KEYV_LIST: dict[str, Any] = {
    "operationId": "datastoreListKeys",
    "summary": "List keys by prefix",
    "description": "Live keys whose name starts with `prefix`, with their values, in key order.",
    "parameters": [
        {"name": "prefix", "in": "query", "schema": {"type": "string"}},
        {"name": "keyspace", "in": "query", "schema": {"type": "string"}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    ],
    "responses": {
        "200": {
            "description": "The matching keys and values",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"key": {"type": "string"}, "value": {}},
                        },
                    }
                }
            },
        }
    },
}

JOB_STATUS: dict[str, Any] = {
    "operationId": "datastoreJobStatus",
    "summary": "Read a job's status",
    "description": "Status (queued, running, done, dead), attempts and the last error.",
    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
    "responses": {
        "200": {
            "description": "The job",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "_id": {"type": "string"},
                            "topic": {"type": "string"},
                            "status": {"enum": ["queued", "running", "done", "dead"]},
                            "attempts": {"type": "integer"},
                            "maxAttempts": {"type": "integer"},
                            "lastError": {"type": ["string", "null"]},
                        },
                    }
                }
            },
        },
        "404": {"description": "No such job"},
    },
}

_INHERITED = ("x-datastore-acl", "security", "tags")


def _derived(source: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    operation = copy.deepcopy(template)
    operation.update({k: copy.deepcopy(source[k]) for k in _INHERITED if k in source})
    return operation


def effective_document(document: dict[str, Any]) -> dict[str, Any]:
    """The blueprint plus the system endpoints its declarations imply (a new dict)."""
    paths = document.get("paths") or {}
    additions: dict[str, Any] = {}
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
    if not additions:
        return document
    result = dict(document)
    result["paths"] = {**paths, **additions}
    return result
