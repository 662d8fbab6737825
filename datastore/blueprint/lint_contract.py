"""Lint rules about what a blueprint promises, beyond the file itself:

- [published] (error): the document the datastore publishes at ``/openapi.json`` (the blueprint
  plus system endpoints, error answers, parameters and limits, restated in the blueprint's own
  OpenAPI version by ``publish.py``) must be valid OpenAPI for that version. A schema keyword
  the JSON Schema check accepts but OpenAPI does not (``nullable: "yes"`` under 3.0) fails here.
- [acl-property] (warning): an access rule reads ``document.<name>`` but no schema of the
  collection declares a property ``<name>``: a typo (``document.ownr``) otherwise lints clean
  and makes every write a bare 403. Collections whose schemas declare no properties at all are
  not checked (anything may be stored there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator

from datastore.blueprint.diagnostics import Severity
from datastore.blueprint.model import HTTP_METHODS, Kind, classify, follow_refs, split_path

Add = Callable[[Sequence[str | int], str, str, Severity], None]
"""Report one problem: (pointer, rule, message, severity)."""


def check_published(document: dict[str, Any], add: Add) -> None:
    """[published]: the served form of ``document`` is valid OpenAPI of its version."""
    from datastore.blueprint.model import build_blueprint
    from datastore.blueprint.publish import published_document
    from datastore.blueprint.system import effective_document

    try:
        effective = effective_document(document)
        published = published_document(effective, build_blueprint(effective), "", max_limit=1000)
    except Exception as exc:  # noqa: BLE001 - reported as the problem it is
        add((), "published", f"the published document could not be built: {exc}", "error")
        return
    version = str(published.get("openapi", ""))
    validator = OpenAPIV31SpecValidator if version.startswith("3.1") else OpenAPIV30SpecValidator
    for found in validator(published).iter_errors():
        error = _deepest(found)
        path = list(getattr(error, "absolute_path", []) or [])
        message = str(getattr(error, "message", error)).splitlines()[0][:200]
        add(
            _known_prefix(document, path),
            "published",
            f"the published document is not valid OpenAPI {version}: {message}",
            "error",
        )


def _deepest(error: Any) -> Any:
    """The most specific of an error's sub-errors (the validator reports ``anyOf`` at the top)."""
    context = list(getattr(error, "context", None) or [])
    if not context:
        return error
    return _deepest(max(context, key=lambda e: len(list(getattr(e, "absolute_path", [])))))


def _known_prefix(document: Any, path: list[Any]) -> list[Any]:
    """The longest prefix of ``path`` that exists in the blueprint (for a position)."""
    node, known = document, []
    for part in path:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]
        else:
            break
        known.append(part)
    return known


def check_rule_properties(document: dict[str, Any], add: Add) -> None:
    """[acl-property]: every ``document.<name>`` a rule reads is declared by a schema of the
    operation's collection."""
    from datastore.auth.acl import AclSyntaxError, Ref, parse_rule

    paths = document.get("paths")
    if not isinstance(paths, dict):
        return
    declared = _declared_properties(document, paths)
    for path, item in paths.items():
        if not isinstance(item, dict):
            continue
        collection = _collection(str(path))
        names = declared.get(collection) if collection is not None else None
        if not names:
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            rule = operation.get("x-datastore-acl") if isinstance(operation, dict) else None
            if not isinstance(rule, str):
                continue
            try:
                parsed = parse_rule(rule)
            except AclSyntaxError:
                continue  # [acl-syntax] reports it
            for ref in _refs(parsed.expr):
                if not isinstance(ref, Ref) or ref.root != "document" or not ref.path:
                    continue
                name = ref.path[0]
                if name.startswith("$") or name in names:
                    continue
                add(
                    ("paths", path, method, "x-datastore-acl"),
                    "acl-property",
                    f"document.{name}: no schema of {'/'.join(collection or ())} declares "
                    f"a property {name!r} (declared: {', '.join(sorted(names))})",
                    "warning",
                )


def _refs(expr: Any) -> Iterator[Any]:
    if expr is None:
        return
    for attribute in ("left", "right"):
        if hasattr(expr, attribute):
            yield getattr(expr, attribute)
    for child in getattr(expr, "items", ()):
        yield from _refs(child)
    if hasattr(expr, "item"):
        yield from _refs(expr.item)


def _collection(path: str) -> tuple[str, ...] | None:
    """The collection a path's operations work on, as a shape (``("events", "{}", "c")``)."""
    segments = split_path(path)
    kind = classify(segments)
    shape = tuple("{}" if s.param else s.text for s in segments)
    if kind is Kind.COLLECTION:
        return shape
    if kind is Kind.DOCUMENT:
        return shape[:-1]
    if kind in (Kind.BYQUERY, Kind.COUNT, Kind.CHANGES):
        return shape[:-1]
    return None


def _declared_properties(
    document: dict[str, Any], paths: dict[str, Any]
) -> dict[tuple[str, ...], set[str]]:
    """Collection shape → the top-level property names its request and response schemas
    declare."""
    found: dict[tuple[str, ...], set[str]] = {}
    for path, item in paths.items():
        collection = _collection(str(path))
        if collection is None or not isinstance(item, dict):
            continue
        names = found.setdefault(collection, set())
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            responses = operation.get("responses") or {}
            bodies = [operation.get("requestBody")]
            bodies += [r for code, r in responses.items() if str(code).startswith("2")]
            for body in bodies:
                body = follow_refs(document, body)
                content = body.get("content") if isinstance(body, dict) else None
                for media in (content or {}).values():
                    if isinstance(media, dict):
                        names |= _properties(document, media.get("schema"), 0)
    return found


def _properties(document: dict[str, Any], schema: Any, depth: int) -> set[str]:
    schema = follow_refs(document, schema)
    if not isinstance(schema, dict) or depth > 6:
        return set()
    names = set(schema.get("properties") or {})
    if schema.get("type") == "array" or "items" in schema:
        names |= _properties(document, schema.get("items"), depth + 1)
    for key in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(key) or []:
            names |= _properties(document, part, depth + 1)
    return names
