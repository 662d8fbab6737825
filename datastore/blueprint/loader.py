"""PLACEHOLDER (replaced by the loader branch)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from datastore.blueprint.model import HTTP_METHODS, split_path


@dataclass(frozen=True)
class LoadedBlueprint:
    path: Path
    document: dict[str, Any]


def load_blueprint(path: str | Path) -> LoadedBlueprint:
    p = Path(path)
    return LoadedBlueprint(p, yaml.safe_load(p.read_text()))


def _sort_key(path: str) -> tuple[tuple[int, str], ...]:
    return tuple((1 if s.param else 0, s.text) for s in split_path(path))


def connexion_view(document: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(document)
    paths = {}
    for path in sorted(doc.get("paths", {}), key=_sort_key):
        item = doc["paths"][path]
        for method in HTTP_METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            op["operationId"] = f"{method} {path}"
            body = op.get("requestBody")
            if isinstance(body, dict):
                body["content"] = {k: {"schema": {}} for k in body.get("content", {})}
            op["responses"] = {
                k: {"description": v.get("description", "") if isinstance(v, dict) else ""}
                for k, v in op.get("responses", {}).items()
            }
            for param in op.get("parameters", []):
                param["schema"] = (
                    {"type": "string"} if param.get("in") == "path" else param.get("schema", {})
                )
        paths[path] = item
    doc["paths"] = paths
    doc["openapi"] = "3.0.3"
    doc["components"] = {"securitySchemes": doc.get("components", {}).get("securitySchemes", {})}
    for key in ("webhooks", "jsonSchemaDialect"):
        doc.pop(key, None)
    return doc
