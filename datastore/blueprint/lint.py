"""Every load-time check of a blueprint (SPEC §2), reporting all problems with positions.

``datastore serve`` refuses a blueprint with errors and ``datastore lint`` prints the same
diagnostics. Rules (ids in brackets): [yaml] [duplicate-key] [ref] [openapi] [schema]
[path-shape] [method] [path-parameter] [acl-missing] [acl-syntax] [acl-parent] [source]
[unknown-extension] [indexes] [parent-missing] [operation-id] [published]; warnings
[no-document-endpoint] [public-write] [source-type] [unused-schema] [acl-property]
(the last and [published] in ``lint_contract.py``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jsonschema
from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator

from datastore.blueprint.diagnostics import Diagnostic, Severity
from datastore.blueprint.lint_contract import check_published, check_rule_properties
from datastore.blueprint.loader import (
    LoadedBlueprint,
    Pointer,
    read_blueprint,
    resolve_pointer,
    value_at,
)
from datastore.blueprint.meta_messages import meta_schema_message
from datastore.blueprint.model import ALLOWED_METHODS, HTTP_METHODS, Kind, classify, split_path

AclChecker = Callable[[str], list[tuple[int, str]]]
"""Checks one ACL expression: [(0-based column offset, message)], empty when it parses."""

KNOWN_EXTENSIONS = ("x-datastore-acl", "x-datastore-source", "x-datastore-indexes")
SOURCES = (
    "document.$id",
    "document.$createdDatetime",
    "document.$updatedDatetime",
    "document.$extends",
    "document.$extendsAll",
    "document.$extendedBy",
    "document.$extendedByAll",
)


class _Report:
    def __init__(self, loaded: LoadedBlueprint) -> None:
        self.loaded = loaded
        self.found: list[Diagnostic] = []

    def add(
        self,
        pointer: Sequence[str | int],
        rule: str,
        message: str,
        severity: Severity = "error",
        column_offset: int = 0,
    ) -> None:
        file, line, column = self.loaded.locate(pointer)
        self.found.append(Diagnostic(file, line, column + column_offset, severity, rule, message))


def _schema_slots(document: dict[str, Any]) -> Iterator[Pointer]:
    """Pointers of every Schema Object the document declares (not those nested in schemas)."""

    def walk(node: Any, pointer: Pointer) -> Iterator[Pointer]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "schema" and isinstance(value, dict):
                    yield (*pointer, key)
                elif key != "schema":
                    yield from walk(value, (*pointer, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, (*pointer, index))

    yield from walk(document.get("paths"), ("paths",))
    components = document.get("components")
    if isinstance(components, dict):
        for section in ("parameters", "requestBodies", "responses", "headers"):
            yield from walk(components.get(section), ("components", section))
        schemas = components.get("schemas")
        if isinstance(schemas, dict):
            for name in schemas:
                yield ("components", "schemas", name)


def _blank_schemas(document: dict[str, Any], slots: list[Pointer]) -> dict[str, Any]:
    """A copy whose Schema Objects are ``{}`` (dialect differences must not fail the blueprint)."""

    def copy_without(node: Any, pointer: Pointer) -> Any:
        if pointer in blank:
            return {}
        if isinstance(node, dict):
            return {k: copy_without(v, (*pointer, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [copy_without(v, (*pointer, i)) for i, v in enumerate(node)]
        return node

    blank = set(slots)
    result: dict[str, Any] = copy_without(document, ())
    return result


_OWN_RULES = {"DuplicateOperationIDError", "UnresolvableParameterError"}
"""openapi-spec-validator errors the [operation-id] and [path-parameter] rules report better."""


def _check_openapi(report: _Report, document: dict[str, Any], slots: list[Pointer]) -> None:
    if "openapi" not in document:
        swagger = document.get("swagger")
        if swagger is not None:
            report.add(
                ("swagger",),
                "openapi",
                f"this is a Swagger {swagger} file (swagger: {str(swagger)!r}); a blueprint is "
                "OpenAPI 3.0 or 3.1: convert it first (for example: npx swagger2openapi FILE)",
            )
        else:
            report.add((), "openapi", "no openapi: key: a blueprint starts with openapi: 3.1.0")
        return
    version = str(document.get("openapi", ""))
    if not version.startswith(("3.0", "3.1")):
        report.add(("openapi",), "openapi", f"openapi must be 3.0.x or 3.1.x, got {version!r}")
        return
    blanked = _blank_schemas(document, slots)
    validator_class = (
        OpenAPIV31SpecValidator if version.startswith("3.1") else OpenAPIV30SpecValidator
    )
    try:
        for error in validator_class(blanked).iter_errors():
            if type(error).__name__ in _OWN_RULES:
                continue  # reported by this linter's own rule, with a precise position
            path = list(getattr(error, "absolute_path", []) or [])
            message = str(getattr(error, "message", error)).splitlines()[0]
            report.add(path, "openapi", message[:300])
    except Exception as exc:  # noqa: BLE001 - a validator crash is reported, not raised
        report.add((), "openapi", f"the document could not be checked: {exc}")


def _check_schemas(report: _Report, document: dict[str, Any], slots: list[Pointer]) -> None:
    for pointer in slots:
        schema = value_at(document, pointer)
        if not isinstance(schema, dict) or ("$ref" in schema and len(schema) == 1):
            continue
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        meta = cls(cls.META_SCHEMA)
        for error in meta.iter_errors(schema):
            where = (*pointer, *error.absolute_path)
            report.add(where, "schema", meta_schema_message(error))


def _walk(node: Any, pointer: Pointer) -> Iterator[tuple[Pointer, str, Any, dict[str, Any]]]:
    """Every (pointer of key, key, value, parent) of mapping entries in the document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*pointer, key), key, value, node
            yield from _walk(value, (*pointer, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*pointer, index))


def _check_extensions(report: _Report, document: dict[str, Any]) -> None:
    for pointer, key, value, _parent in _walk(document, ()):
        if not key.startswith("x-datastore"):
            continue
        if key not in KNOWN_EXTENSIONS:
            close = difflib.get_close_matches(key, KNOWN_EXTENSIONS, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            report.add((*pointer, "<key>"), "unknown-extension", f"unknown extension {key}{hint}")
        elif key == "x-datastore-source":
            in_properties = len(pointer) >= 3 and pointer[-3] == "properties"
            if value not in SOURCES:
                report.add(
                    pointer,
                    "source",
                    f"unknown source {value!r}; one of: {', '.join(SOURCES)}",
                )
            elif not in_properties:
                report.add(pointer, "source", "x-datastore-source belongs on a schema property")
        elif key == "x-datastore-indexes":
            ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
            if not ok:
                report.add(pointer, "indexes", "x-datastore-indexes must be a list of field paths")


def _declared_path_params(
    item: dict[str, Any], operation: dict[str, Any], doc: dict[str, Any], where: Pointer
) -> dict[str, Pointer]:
    """The operation's path parameters (its own and its path item's): name → where its name
    is written (the ``$ref`` of a referenced one)."""
    names: dict[str, Pointer] = {}
    for owner, params in (
        (where[:2], item.get("parameters")),
        (where, operation.get("parameters")),
    ):
        for index, param in enumerate(params if isinstance(params, list) else []):
            at: Pointer = (*owner, "parameters", index)
            if isinstance(param, dict) and "$ref" in param:
                at = (*at, "$ref")
                try:
                    param = resolve_pointer(doc, str(param["$ref"]).lstrip("#"))
                except (KeyError, IndexError, ValueError):
                    continue
            elif isinstance(param, dict) and "name" in param:
                at = (*at, "name")
            if isinstance(param, dict) and param.get("in") == "path":
                names[str(param.get("name"))] = at
    return names


def _check_path_params(
    report: _Report, where: Pointer, templated: set[str], declared: dict[str, Pointer]
) -> None:
    """Each template without a parameter, each parameter not in the template; a misnamed one
    (one of each) is one error at the parameter, however many operations share it."""
    missing = sorted(templated - declared.keys())
    extra = sorted(declared.keys() - templated)
    path = str(where[1])
    if len(missing) == 1 and len(extra) == 1:
        report.add(
            declared[extra[0]],
            "path-parameter",
            f"path parameter {extra[0]!r} is not in the path {path}: "
            f"did you mean {missing[0]!r}? (the names must match)",
        )
        return
    for name in missing:
        report.add(where, "path-parameter", f"{{{name}}} has no path parameter")
    for name in extra:
        report.add(
            declared[name], "path-parameter", f"path parameter {name!r} is not in the path {path}"
        )


def _check_paths(report: _Report, document: dict[str, Any], check_acl: AclChecker | None) -> None:
    paths = document.get("paths")
    if not isinstance(paths, dict):
        return
    global_security = document.get("security")
    shapes = {path: classify(split_path(path)) for path in paths}
    document_shapes = {_shape(p) for p, k in shapes.items() if k is Kind.DOCUMENT}
    collection_shapes = {_shape(p) for p, k in shapes.items() if k is Kind.COLLECTION}
    seen_ids: dict[str, Pointer] = {}
    for path, item in paths.items():
        kind = shapes[path]
        if kind is None:
            report.add(
                ("paths", path, "<key>"),
                "path-shape",
                f"{path}: segments must alternate collection names and {{id}} parameters "
                "(or be a /keyv or /queue system path)",
            )
            continue
        if not isinstance(item, dict):
            continue
        segments = split_path(path)
        if kind in (Kind.COLLECTION, Kind.DOCUMENT) and len(segments) > 2:
            parent = _shape(path)[: (len(segments) - 1) // 2 * 2]
            if parent not in document_shapes:
                report.add(
                    ("paths", path, "<key>"),
                    "parent-missing",
                    f"{path} is nested under a document endpoint that is not declared",
                )
        if kind is Kind.COLLECTION and (*_shape(path), "{}") not in document_shapes:
            report.add(
                ("paths", path, "<key>"),
                "no-document-endpoint",
                f"{path} has no document endpoint ({path}/{{id}}): its documents cannot be "
                "read one by one",
                "warning",
            )
        if kind is Kind.DOCUMENT and _shape(path)[:-1] not in collection_shapes:
            pass  # a document endpoint alone is allowed (Squiz)
        templated = {s.param for s in segments if s.param}
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            where: Pointer = ("paths", path, method)
            if method not in ALLOWED_METHODS[kind]:
                allowed = ", ".join(sorted(m.upper() for m in ALLOWED_METHODS[kind]))
                report.add(
                    (*where, "<key>"),
                    "method",
                    f"{method.upper()} is not allowed on a {kind.value} endpoint ({allowed})",
                )
            declared = _declared_path_params(item, operation, document, where)
            _check_path_params(report, where, templated, declared)
            _check_operation(report, where, operation, global_security, check_acl)
            user_id = operation.get("operationId")
            if isinstance(user_id, str):
                if user_id in seen_ids:
                    report.add(
                        (*where, "operationId"),
                        "operation-id",
                        f"operationId {user_id!r} is used twice",
                    )
                seen_ids.setdefault(user_id, where)


def _shape(path: str) -> tuple[str, ...]:
    return tuple("{}" if s.param else s.text for s in split_path(path))


def _check_operation(
    report: _Report,
    where: Pointer,
    operation: dict[str, Any],
    global_security: Any,
    check_acl: AclChecker | None,
) -> None:
    acl = operation.get("x-datastore-acl")
    security = operation.get("security", global_security)
    has_security = isinstance(security, list) and any(bool(s) or s == {} for s in security)
    if acl is None:
        if not has_security:
            report.add(
                (*where, "<key>"),
                "acl-missing",
                "the operation has neither x-datastore-acl nor a security requirement "
                "(deny by default: add x-datastore-acl: public to open it)",
            )
        return
    if not isinstance(acl, str) or not acl.strip():
        report.add((*where, "x-datastore-acl"), "acl-syntax", "x-datastore-acl must be a string")
        return
    if acl.strip().lower() == "public":
        if where[-1] in ("post", "put", "patch", "delete"):
            report.add(
                (*where, "x-datastore-acl"),
                "public-write",
                f"anyone may {where[-1].upper()} here (x-datastore-acl: public)",
                "warning",
            )
        return
    if check_acl is not None:
        problems = check_acl(acl)
        for offset, message in problems:
            report.add((*where, "x-datastore-acl"), "acl-syntax", message, column_offset=offset)
        path = str(where[1])
        if not problems and "parent." in acl and len(split_path(path)) <= 2:
            from datastore.auth.acl import parse_rule, references

            if "parent" in references(parse_rule(acl)):
                report.add(
                    (*where, "x-datastore-acl"),
                    "acl-parent",
                    f"{path} is not nested, so its rule has no parent document",
                )


def _check_refs(report: _Report, document: dict[str, Any]) -> None:
    for pointer, key, value, _ in _walk(document, ()):
        if key != "$ref" or not isinstance(value, str):
            continue
        if not value.startswith("#"):
            continue  # file references were bundled (or reported) by the loader
        try:
            resolve_pointer(document, value[1:])
        except (KeyError, IndexError, ValueError):
            report.add(pointer, "ref", f"{value} does not resolve")


_SOURCE_TYPES = {
    "document.$id": "string",
    "document.$createdDatetime": "string",
    "document.$updatedDatetime": "string",
    "document.$extends": "string",
    "document.$extendsAll": "array",
    "document.$extendedBy": "array",
    "document.$extendedByAll": "array",
}


def _check_source_types(report: _Report, document: dict[str, Any]) -> None:
    """Warn when a property that shows a source declares a type the value never has."""
    for pointer, key, value, parent in _walk(document, ()):
        if key != "x-datastore-source" or value not in _SOURCE_TYPES:
            continue
        declared = parent.get("type")
        if declared is None:
            continue
        kinds = {declared} if isinstance(declared, str) else set(declared)
        if _SOURCE_TYPES[value] not in kinds:
            report.add(
                pointer[:-1],
                "source-type",
                f"{value} is a {_SOURCE_TYPES[value]}, but the property is declared "
                f"{'/'.join(sorted(kinds))}",
                "warning",
            )


def _check_unused_schemas(report: _Report, document: dict[str, Any]) -> None:
    """Warn about components/schemas entries nothing refers to."""
    components = document.get("components")
    schemas = components.get("schemas") if isinstance(components, dict) else None
    if not isinstance(schemas, dict):
        return
    used: set[str] = set()
    for _, key, value, _parent in _walk(document, ()):
        if key == "$ref" and isinstance(value, str) and value.startswith("#/components/schemas/"):
            used.add(value.split("/")[3].replace("~1", "/").replace("~0", "~"))
    for name in schemas:
        if name not in used:
            report.add(
                ("components", "schemas", name, "<key>"),
                "unused-schema",
                f"the schema {name!r} is not used by any operation",
                "warning",
            )


def lint_blueprint(
    loaded: LoadedBlueprint, *, check_acl: AclChecker | None = None
) -> list[Diagnostic]:
    """Every problem of a loaded blueprint (errors and warnings), positioned."""
    if check_acl is None:
        from datastore.auth.acl import check_rule

        check_acl = check_rule
    report = _Report(loaded)
    document = loaded.document
    slots = list(_schema_slots(document))
    _check_refs(report, document)
    _check_openapi(report, document, slots)
    _check_schemas(report, document, slots)
    _check_extensions(report, document)
    _check_paths(report, document, check_acl)
    _check_source_types(report, document)
    _check_unused_schemas(report, document)
    check_rule_properties(document, report.add)
    if not any(d.severity == "error" for d in report.found):
        check_published(document, report.add)
    return sorted(set(report.found))


def load_and_lint(
    path: str | Path, *, check_acl: AclChecker | None = None
) -> tuple[LoadedBlueprint | None, list[Diagnostic]]:
    """Load a blueprint and lint it: (the blueprint or None, every problem)."""
    loaded, problems = read_blueprint(path)
    if loaded is None:
        return None, problems
    return loaded, sorted(set(problems + lint_blueprint(loaded, check_acl=check_acl)))


def lint_paths(paths: Sequence[str | Path]) -> list[Diagnostic]:
    """Every problem of every blueprint file named."""
    found: list[Diagnostic] = []
    for path in paths:
        found.extend(load_and_lint(path)[1])
    return found
