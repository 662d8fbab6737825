"""System endpoints the datastore adds to a blueprint that opts into their family.

A blueprint that declares ``GET /keyv/{key}`` also gets ``GET /keyv`` (list by prefix), with
the same access rule or security. The result is the *effective* document: the blueprint plus
these endpoints, which is what is routed, validated and published.
"""

from __future__ import annotations

import copy
from typing import Any

KEYV_LIST: dict[str, Any] = {
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

_INHERITED = ("x-datastore-acl", "security", "tags")


def effective_document(document: dict[str, Any]) -> dict[str, Any]:
    """The blueprint plus the system endpoints its declarations imply (a new dict)."""
    paths = document.get("paths") or {}
    additions: dict[str, Any] = {}
    if "/keyv" not in paths:
        for path, item in paths.items():
            parts = path.strip("/").split("/")
            if len(parts) == 2 and parts[0] == "keyv" and isinstance(item, dict):
                source = item.get("get")
                if isinstance(source, dict):
                    operation = copy.deepcopy(KEYV_LIST)
                    operation.update({k: source[k] for k in _INHERITED if k in source})
                    additions["/keyv"] = {"get": operation}
                    break
    if not additions:
        return document
    result = dict(document)
    result["paths"] = {**paths, **additions}
    return result
