"""An OpenAPI 3.0 document's schemas restated in OpenAPI 3.0's own schema dialect.

Squiz blueprints write their document schemas as JSON Schema draft-07 files even under
``openapi: 3.0.x`` (``$schema``, ``type: ["null", "string"]``, numeric ``exclusiveMinimum``),
and the datastore accepts them (SPEC §2). A published 3.0 document must be valid 3.0, so every
schema in it is rewritten here into the keywords 3.0 has:

- ``type`` lists: ``null`` becomes ``nullable: true``; several other types become an
  ``anyOf`` of one ``type`` each.
- ``const`` becomes a one-value ``enum``; ``examples`` the first ``example``; numeric
  ``exclusiveMinimum`` / ``exclusiveMaximum`` the 3.0 pair (``minimum`` + ``true``).
- A ``$ref`` with other keywords next to it (ignored by 3.0) becomes ``allOf: [{$ref}]``
  beside them.
- Keywords 3.0 lacks (``$schema``, ``$id``, ``$comment``, ``propertyNames``, ``contains``,
  ``if``/``then``/``else``, ``dependencies``, tuple ``items``...) are left out: the published
  schema then allows more than the datastore does, and those limits are listed in
  docs/blueprints.md ("What the published document cannot say").

The server keeps validating with the schemas as written; this is only what is published.
"""

from __future__ import annotations

from typing import Any

SCHEMA_KEYWORDS = frozenset(
    {
        "title",
        "multipleOf",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "maxProperties",
        "minProperties",
        "required",
        "enum",
        "type",
        "allOf",
        "oneOf",
        "anyOf",
        "not",
        "items",
        "properties",
        "additionalProperties",
        "description",
        "format",
        "default",
        "nullable",
        "discriminator",
        "readOnly",
        "writeOnly",
        "xml",
        "externalDocs",
        "example",
        "deprecated",
    }
)
"""The keywords of an OpenAPI 3.0 Schema Object (besides ``$ref`` and ``x-`` extensions)."""


def schema_30(schema: Any) -> Any:
    """``schema`` (any JSON Schema draft) in OpenAPI 3.0's dialect (a new value)."""
    if isinstance(schema, bool):
        return {} if schema else {"not": {}}
    if not isinstance(schema, dict):
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        if not any(k in SCHEMA_KEYWORDS - {"description", "title"} for k in rest):
            return {"$ref": ref}
        return {"allOf": [{"$ref": ref}], **schema_30(rest)}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-"):
            out[key] = value
        elif key == "type":
            out.update(_type_30(value))
        elif key == "const":
            out["enum"] = [value]
        elif key == "examples" and isinstance(value, list) and value:
            out.setdefault("example", value[0])
        elif key in ("allOf", "oneOf", "anyOf") and isinstance(value, list):
            out[key] = [schema_30(v) for v in value]
        elif key == "not":
            out[key] = schema_30(value)
        elif key == "items":
            out[key] = schema_30(value) if isinstance(value, dict | bool) else {}
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: schema_30(v) for name, v in value.items()}
        elif key == "additionalProperties":
            out[key] = value if isinstance(value, bool) else schema_30(value)
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            _exclusive_30(schema, key, value, out)
        elif key in SCHEMA_KEYWORDS:
            out[key] = value
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {}  # 3.0 requires items on an array
    return out


def _type_30(kind: Any) -> dict[str, Any]:
    if isinstance(kind, str):
        return {"nullable": True, "enum": [None]} if kind == "null" else {"type": kind}
    if not isinstance(kind, list):
        return {}
    types = [t for t in kind if isinstance(t, str) and t != "null"]
    out: dict[str, Any] = {"nullable": True} if "null" in kind else {}
    if len(types) == 1:
        out["type"] = types[0]
    elif types:
        out["anyOf"] = [{"type": t} for t in types]
    return out


def _exclusive_30(schema: dict[str, Any], key: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, bool):
        out[key] = value
        return
    if not isinstance(value, int | float):
        return
    bound = "minimum" if key == "exclusiveMinimum" else "maximum"
    other = schema.get(bound)
    lower = key == "exclusiveMinimum"
    if isinstance(other, int | float) and not isinstance(other, bool):
        stricter = other > value if lower else other < value
        if stricter:
            return  # the inclusive bound is the stricter one
    out[bound] = value
    out[key] = True


def document_30(document: dict[str, Any]) -> None:
    """Rewrite every schema of an OpenAPI 3.0 ``document`` in place: component schemas and
    every ``schema`` of a parameter, header or media type."""
    components = document.get("components")
    if isinstance(components, dict) and isinstance(components.get("schemas"), dict):
        schemas = components["schemas"]
        for name in list(schemas):
            schemas[name] = schema_30(schemas[name])
    stack: list[Any] = [
        {k: v for k, v in document.items() if k != "components"},
        {k: v for k, v in (components or {}).items() if k != "schemas"},
    ]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "schema" and isinstance(value, dict | bool):
                    node[key] = schema_30(value)
                elif key not in ("example", "examples") and not key.startswith("x-"):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
