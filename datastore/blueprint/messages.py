"""Plain-language reasons for JSON Schema validation errors.

jsonschema's own messages echo the whole offending value (``'' should be non-empty``,
``Additional properties are not allowed ('x' was unexpected)``); the datastore answers with a
property path and a sentence a person can act on, and never echoes more than a few characters
of what was sent.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jsonschema.exceptions import ValidationError

from datastore.errors import InvalidParam
from datastore.jsonvalues import join_path

_TYPE_WORDS = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}
_FORMAT_WORDS = {
    "date-time": "a date-time (RFC 3339), e.g. 2024-05-01T12:00:00Z",
    "date": "a date, e.g. 2024-05-01",
    "time": "a time, e.g. 12:00:00Z",
    "email": "an email address",
    "idn-email": "an email address",
    "uri": "an absolute URI, e.g. https://example.com/x",
    "uri-reference": "a URI reference",
    "uuid": "a UUID, e.g. 123e4567-e89b-12d3-a456-426614174000",
    "ipv4": "an IPv4 address",
    "ipv6": "an IPv6 address",
    "hostname": "a host name",
    "regex": "a regular expression",
    "duration": "an ISO 8601 duration, e.g. P3D",
}
_REQUIRED = re.compile(r"^(.*) is a required property$", re.S)


def short(value: Any, limit: int = 40) -> str:
    """A value as JSON-ish text, cut to ``limit`` characters."""
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plural(count: Any, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def type_reason(expected: Any) -> str:
    """``must be a string`` / ``must be a string or null``."""
    names = [expected] if isinstance(expected, str) else list(expected)
    return "must be " + " or ".join(_TYPE_WORDS.get(n, n) for n in names)


def reason(error: ValidationError) -> str:
    """The plain-language reason for one error (not for required/additionalProperties)."""
    keyword, value = error.validator, error.validator_value
    simple: dict[str, Callable[[], str]] = {
        "minLength": lambda: f"must be at least {_plural(value, 'character')} long",
        "maxLength": lambda: f"must be at most {_plural(value, 'character')} long",
        "minimum": lambda: f"must be at least {value}",
        "maximum": lambda: f"must be at most {value}",
        "multipleOf": lambda: f"must be a multiple of {value}",
        "pattern": lambda: f"must match the pattern {value}",
        "minItems": lambda: f"must have at least {_plural(value, 'item')}",
        "maxItems": lambda: f"must have at most {_plural(value, 'item')}",
        "uniqueItems": lambda: "must not contain the same item twice",
        "minProperties": lambda: f"must have at least {_plural(value, 'property')}",
        "maxProperties": lambda: f"must have at most {_plural(value, 'property')}",
        "const": lambda: f"must be {short(value)}",
        "not": lambda: "is not allowed here",
        "contains": lambda: "must contain at least one matching item",
        "format": lambda: "must be " + _FORMAT_WORDS.get(str(value), f"in the {value} format"),
        "type": lambda: type_reason(value),
        "enum": lambda: "must be one of: " + ", ".join(short(v, 30) for v in value),
        "propertyNames": lambda: "has a property name that is not allowed",
        "dependentRequired": lambda: "needs other properties alongside it",
        "dependencies": lambda: "needs other properties alongside it",
        "oneOf": lambda: "must match exactly one of the allowed shapes",
        "anyOf": lambda: "must match one of the allowed shapes",
        "false": lambda: "is not allowed",
    }
    if keyword in ("exclusiveMinimum", "exclusiveMaximum"):
        word = "more" if keyword == "exclusiveMinimum" else "less"
        limit = (
            value
            if not isinstance(value, bool)
            else error.schema.get("minimum" if keyword == "exclusiveMinimum" else "maximum")
        )
        return f"must be {word} than {limit}"
    make = simple.get(str(keyword))
    if make is not None:
        return make()
    return f"does not satisfy {keyword}"


def _extras(error: ValidationError) -> list[str]:
    instance = error.instance if isinstance(error.instance, dict) else {}
    schema = error.schema if isinstance(error.schema, dict) else {}
    declared = schema.get("properties") or {}
    patterns = [re.compile(p) for p in (schema.get("patternProperties") or {})]
    return [
        key for key in instance if key not in declared and not any(p.search(key) for p in patterns)
    ]


def _missing(error: ValidationError) -> str:
    match = _REQUIRED.match(str(error.message))
    if match:
        try:
            return str(ast.literal_eval(match.group(1)))
        except (ValueError, SyntaxError):
            return match.group(1).strip("'\"")
    return "?"


def _best_branch(error: ValidationError) -> ValidationError | None:
    """For oneOf/anyOf, the branch error most worth reporting (the deepest), if any."""
    if not error.context:
        return None
    return max(error.context, key=lambda e: (len(e.absolute_path), -len(str(e.message))))


def invalid_params(errors: Iterable[ValidationError]) -> Iterator[InvalidParam]:
    """One InvalidParam per problem, named by property path."""
    for error in errors:
        path = list(error.absolute_path)
        if error.validator == "required":
            yield InvalidParam(join_path([*path, _missing(error)]), "is required")
        elif error.validator in ("additionalProperties", "unevaluatedProperties"):
            extras = _extras(error)
            if not extras:
                yield InvalidParam(join_path(path), "has properties that are not allowed")
            for key in extras:
                yield InvalidParam(join_path([*path, key]), "is not an allowed property")
        elif error.validator in ("oneOf", "anyOf"):
            branch = _best_branch(error)
            text = reason(error)
            if branch is not None and branch.validator not in ("type", "oneOf", "anyOf"):
                inner = next(invalid_params([branch]), None)
                if inner is not None:
                    yield inner
                    continue
            yield InvalidParam(join_path(path), text)
        else:
            yield InvalidParam(join_path(path), reason(error))
