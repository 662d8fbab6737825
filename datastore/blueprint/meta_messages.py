"""Plain words for a schema in a blueprint that breaks its JSON Schema meta-schema.

The validator's own messages describe the meta-schema (``'int' is not valid under any of the
given schemas``); these say what to write instead (``type 'int' is not a JSON Schema type ...
did you mean 'integer'?``).
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from jsonschema.exceptions import ValidationError

TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")
_ALIASES = {
    "int": "integer",
    "long": "integer",
    "float": "number",
    "double": "number",
    "decimal": "number",
    "bool": "boolean",
    "str": "string",
    "text": "string",
    "date": "string",
    "datetime": "string",
    "dict": "object",
    "map": "object",
    "list": "array",
    "none": "null",
}
_ARTICLES = {"array": "an array", "object": "an object", "integer": "an integer"}


def _json(value: Any) -> str:
    return json.dumps(value, default=str)


def _suggestion(name: str) -> str | None:
    lowered = name.lower()
    if lowered in TYPES:
        return lowered
    if lowered in _ALIASES:
        return _ALIASES[lowered]
    close = difflib.get_close_matches(lowered, TYPES, n=1, cutoff=0.6)
    return close[0] if close else None


def _type_keyword(value: Any) -> str | None:
    """The message for a bad ``type`` value (None when the value is not the problem)."""
    names = value if isinstance(value, list) else [value]
    bad = [n for n in names if not isinstance(n, str) or n not in TYPES]
    if not bad:
        return None
    first = bad[0]
    hint = _suggestion(first) if isinstance(first, str) else None
    return f"type {_json(first)} is not a JSON Schema type; use one of {', '.join(TYPES)}" + (
        f" (did you mean {hint!r}?)" if hint else ""
    )


def _kinds(expected: Any) -> str:
    kinds = expected if isinstance(expected, list) else [expected]
    return " or ".join(_ARTICLES.get(k, f"a {k}") for k in kinds)


def meta_schema_message(error: ValidationError) -> str:
    """One line saying what is wrong with the schema keyword the error points at."""
    path = list(error.absolute_path)
    keyword = path[-1] if path else None
    if error.validator == "anyOf" and keyword == "type":
        message = _type_keyword(error.instance)
        if message:
            return message
    if error.validator == "type" and isinstance(keyword, str):
        if keyword == "required" and isinstance(error.instance, bool):
            return (
                "required must be a list of property names on the object schema "
                "(required: [name, ...]), not true or false on a property"
            )
        return f"{keyword} must be {_kinds(error.validator_value)}, got {_json(error.instance)}"
    if error.validator == "minimum" and isinstance(keyword, str):
        return f"{keyword} must be at least {error.validator_value}, got {_json(error.instance)}"
    return f"not a valid JSON Schema: {error.message[:200]}"
