"""``datastore schema``: a JSON Schema of the blueprint format, for editors.

It is the OpenAPI 3.1 document schema (shipped by openapi-spec-validator) with the datastore's
extensions described where they belong: ``x-datastore-acl`` on operations,
``x-datastore-indexes`` on path items, ``x-datastore-source`` on schema properties. Point the
YAML language server at it (``# yaml-language-server: $schema=./blueprint.schema.json``) for
completion, hover help and inline errors while typing a blueprint.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import openapi_spec_validator

from datastore.blueprint.lint import SOURCES

ACL = {
    "description": (
        "Who may call this operation: `public`, or a rule over jwt.<claim>, document.<path>, "
        "parent.<path>, apikey.readonly with === !== < > <= >= && || ! and parentheses. "
        "See docs/access-control.md."
    ),
    "type": "string",
    "examples": ["public", "jwt.isAdmin === true || jwt.sub === document.ownerId"],
}
INDEXES = {
    "description": "Document fields to index on PostgreSQL (dot paths), e.g. [category, price].",
    "type": "array",
    "items": {"type": "string", "minLength": 1},
}
SOURCE = {
    "description": "Fill this property from the datastore: the id, timestamps or inheritance.",
    "enum": list(SOURCES),
}


def blueprint_schema() -> dict[str, Any]:
    """The JSON Schema of a blueprint (OpenAPI 3.1 plus the datastore's extensions)."""
    base = Path(openapi_spec_validator.__file__).parent / "resources" / "schemas" / "v3.1"
    schema: dict[str, Any] = copy.deepcopy(json.loads((base / "schema.json").read_text()))
    schema["$id"] = "https://blueprint-datastore.invalid/schema/blueprint.json"
    schema["title"] = "Blueprint datastore blueprint"
    defs = schema["$defs"]
    defs["operation"].setdefault("properties", {})["x-datastore-acl"] = ACL
    defs["path-item"].setdefault("properties", {})["x-datastore-indexes"] = INDEXES
    defs["datastore-property"] = {
        "type": "object",
        "properties": {"x-datastore-source": SOURCE},
    }
    defs["schema"] = {
        "$dynamicAnchor": "meta",
        "type": ["object", "boolean"],
        "properties": {
            "properties": {
                "type": "object",
                "additionalProperties": {"$ref": "#/$defs/datastore-property"},
            },
            "x-datastore-source": SOURCE,
        },
    }
    return schema
