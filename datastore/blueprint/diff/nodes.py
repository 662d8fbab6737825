"""Reading a bundled blueprint document for ``datastore diff``: nodes at pointers, ``$ref``
chains followed, the JSON schema of a body, values as canonical text."""

from __future__ import annotations

import json
from typing import Any

from datastore.blueprint.loader import Pointer

MAX_REFS = 32


def ref_pointer(ref: str) -> Pointer | None:
    """The pointer of a local ``$ref`` (``#/...``); ``None`` for any other reference."""
    if not ref.startswith("#/"):
        return None
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/"))


def node_at(document: Any, pointer: Pointer) -> Any:
    """The node at ``pointer``, or ``None`` when there is none."""
    node = document
    for part in pointer:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and str(part).isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def resolve(document: dict[str, Any], pointer: Pointer) -> tuple[Pointer, Any]:
    """Follow a ``$ref`` chain from ``pointer``: the final pointer and node."""
    node = node_at(document, pointer)
    for _ in range(MAX_REFS):
        ref = node.get("$ref") if isinstance(node, dict) else None
        target = ref_pointer(ref) if isinstance(ref, str) else None
        if target is None:
            break
        found = node_at(document, target)
        if found is None:
            break
        pointer, node = target, found
    return pointer, node


def json_media(body: Any) -> str | None:
    """The first JSON media type of a request body or response that has a schema."""
    if not isinstance(body, dict):
        return None
    for media_type, entry in (body.get("content") or {}).items():
        if "json" in media_type and isinstance(entry, dict) and "schema" in entry:
            return str(media_type)
    return None


def json_schema_at(document: dict[str, Any], body: Pointer) -> Pointer | None:
    """Where the JSON schema of the request body or response at ``body`` is (references
    followed), if it has one."""
    pointer, node = resolve(document, body)
    media = json_media(node)
    return None if media is None else (*pointer, "content", media, "schema")


def text(value: Any) -> str:
    """``value`` as canonical JSON: equal texts, equal values."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def mapping(node: dict[str, Any], key: str) -> dict[str, Any]:
    """``node[key]`` when it is a mapping, else an empty one."""
    value = node.get(key)
    return value if isinstance(value, dict) else {}


def strings(node: dict[str, Any], key: str) -> list[str]:
    """The strings of the list ``node[key]`` (none when it is not a list)."""
    value = node.get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
