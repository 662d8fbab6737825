"""Compiling a blueprint's JSON Schemas once, and what the service needs to know about them.

Each schema is validated with the draft it declares (``$schema``; 2020-12 when none), formats
checked, every error reported (see ``messages``). ``$ref``s resolve against the whole (bundled)
blueprint: the blueprint is registered as one resource, and each compiled validator's root is a
reference to the schema's own place in it, so ``#/components/...`` means the blueprint's
components wherever it is written. OpenAPI 3.0's ``nullable: true`` is read as adding ``null``
to ``type``. Properties that map a source (``x-datastore-source``) are filled by the datastore,
so input validation leaves them out (neither checked nor required).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema
from jsonschema.protocols import Validator

from datastore.blueprint.messages import invalid_params
from datastore.blueprint.model import follow_refs
from datastore.blueprint.quick_check import compile_quick
from datastore.errors import InvalidParam, ValidationFailed

BLUEPRINT_URI = "urn:datastore:blueprint"
SOURCE_KEY = "x-datastore-source"
JSON_TYPES = ("null", "boolean", "object", "array", "number", "string", "integer")


@dataclass(frozen=True)
class SchemaInfo:
    """Facts about a document schema (its top-level object), ``$ref``s followed."""

    sources: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    nested: Mapping[str, SchemaInfo] = field(default_factory=dict)
    property_types: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    array_item_types: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    properties: tuple[str, ...] | None = None
    additional_properties_set: bool = False
    id_property: str | None = None

    @cached_property
    def default_paths(self) -> Mapping[tuple[str, ...], Any]:
        """Every default by its property path, nested ones included: what ``apply_defaults``
        fills in (a nested default only inside an object that is present or defaulted), in
        the form the query compiler applies them."""
        found: dict[tuple[str, ...], Any] = {
            (name,): value for name, value in self.defaults.items()
        }
        for name, inner in self.nested.items():
            found.update({(name, *path): value for path, value in inner.default_paths.items()})
        return found


def _types(schema: Any) -> tuple[str, ...]:
    if not isinstance(schema, dict):
        return ()
    kind = schema.get("type")
    names = [kind] if isinstance(kind, str) else list(kind) if isinstance(kind, list) else []
    if schema.get("nullable") is True and "null" not in names:
        names.append("null")
    return tuple(n for n in names if n in JSON_TYPES)


def schema_info(document: dict[str, Any], schema: Any, depth: int = 0) -> SchemaInfo:
    """The facts of ``schema`` (refs followed at each level)."""
    schema = follow_refs(document, schema)
    if not isinstance(schema, dict):
        return SchemaInfo()
    props = schema.get("properties")
    if not isinstance(props, dict):
        return SchemaInfo(additional_properties_set="additionalProperties" in schema)
    sources: dict[str, str] = {}
    defaults: dict[str, Any] = {}
    nested: dict[str, SchemaInfo] = {}
    types: dict[str, tuple[str, ...]] = {}
    items: dict[str, tuple[str, ...]] = {}
    for name, sub in props.items():
        sub = follow_refs(document, sub)
        if not isinstance(sub, dict):
            continue
        source = sub.get(SOURCE_KEY)
        if isinstance(source, str) and source.startswith("document."):
            sources[name] = source.removeprefix("document.")
        if "default" in sub:
            defaults[name] = sub["default"]
        types[name] = _types(sub)
        if "array" in types[name]:
            items[name] = _types(follow_refs(document, sub.get("items")))
        if depth < 8 and isinstance(sub.get("properties"), dict):
            inner = schema_info(document, sub, depth + 1)
            if inner.defaults or inner.nested:
                nested[name] = inner
    id_property = next((p for p, s in sources.items() if s == "$id"), None)
    if id_property is None and "_id" in props:
        id_property = "_id"
    return SchemaInfo(
        sources=sources,
        defaults=defaults,
        nested=nested,
        property_types=types,
        array_item_types=items,
        properties=tuple(props),
        additional_properties_set="additionalProperties" in schema,
        id_property=id_property,
    )


def _input_view(node: Any, openapi_30: bool) -> Any:
    """The blueprint as input validation sees it: sources removed, ``nullable`` as a type.
    Every dict and list is new (the input is never changed, so needs no copy first)."""
    if isinstance(node, list):
        return [_input_view(v, openapi_30) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _input_view(v, openapi_30) for k, v in node.items()}
    props = out.get("properties")
    if isinstance(props, dict):
        sourced = {k for k, v in props.items() if isinstance(v, dict) and SOURCE_KEY in v}
        if sourced:
            out["properties"] = {k: v for k, v in props.items() if k not in sourced}
            if isinstance(out.get("required"), list):
                out["required"] = [r for r in out["required"] if r not in sourced]
    if openapi_30 and out.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


_REFERENCES = ("$ref", "$dynamicRef", "$recursiveRef")


def _has_reference(node: Any) -> bool:
    """Whether a schema holds a reference anywhere (which may point outside it)."""
    if isinstance(node, list):
        return any(_has_reference(v) for v in node)
    if not isinstance(node, dict):
        return False
    return any(k in node for k in _REFERENCES) or any(_has_reference(v) for v in node.values())


def _pointers(document: Any) -> dict[int, str]:
    """id(node) → JSON pointer of every dict in the document."""
    found: dict[int, str] = {}
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        node, pointer = stack.pop()
        if isinstance(node, dict):
            found.setdefault(id(node), pointer)
            for key, value in node.items():
                token = str(key).replace("~", "~0").replace("/", "~1")
                stack.append((value, f"{pointer}/{token}"))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                stack.append((value, f"{pointer}/{index}"))
    return found


class CompiledSchema:
    """A schema compiled once: ``errors`` / ``validate`` per request, ``info`` facts."""

    def __init__(self, validator: Validator, info: SchemaInfo) -> None:
        self._validator = validator
        self.info = info
        self._quick = compile_quick(validator.schema, type(validator), validator.format_checker)
        """The quick answer for a valid instance (``quick_check.py``), None outside its
        subset: jsonschema then decides alone."""

    def errors(self, instance: Any, *, partial: bool = False) -> list[InvalidParam]:
        """Every problem of ``instance``; ``partial`` (PATCH bodies) ignores top-level
        ``required``."""
        if self._quick is not None and self._quick(instance):
            return []
        found = self._validator.iter_errors(instance)
        if partial:
            found = (e for e in found if not (e.validator == "required" and not e.absolute_path))
        return list(invalid_params(found))

    def validate(self, instance: Any, *, partial: bool = False) -> None:
        """Raise ValidationFailed listing every problem of ``instance``."""
        problems = self.errors(instance, partial=partial)
        if problems:
            raise ValidationFailed(invalid_params=problems)


class SchemaCompiler:
    """Compiles the schemas of one blueprint (each once)."""

    def __init__(self, document: dict[str, Any], *, openapi_version: str) -> None:
        self.document = document
        self._pointers = _pointers(document)
        self._openapi_30 = openapi_version.startswith("3.0")
        self._view = _input_view(document, self._openapi_30)
        resource = referencing.Resource.from_contents(
            self._view, default_specification=referencing.jsonschema.DRAFT202012
        )
        self._registry: referencing.Registry[Any] = referencing.Registry().with_resource(
            BLUEPRINT_URI, resource
        )
        self._cache: dict[int, CompiledSchema] = {}
        self._checked: set[tuple[type[Validator], str]] = set()

    def compile(self, schema: dict[str, Any]) -> CompiledSchema:
        """The compiled form of a schema object of this blueprint (or of a standalone one).

        Raises jsonschema.SchemaError when the schema is not valid for its draft.
        """
        cached = self._cache.get(id(schema))
        if cached is not None:
            return cached
        target = follow_refs(self.document, schema)
        cls = jsonschema.validators.validator_for(
            target if isinstance(target, dict) else {}, default=jsonschema.Draft202012Validator
        )
        pointer = self._pointers.get(id(schema))
        if pointer is not None and _has_reference(schema):
            # Its references resolve against the whole blueprint: validate from its place.
            root: dict[str, Any] = {"$ref": f"{BLUEPRINT_URI}#{pointer}"}
        else:
            # Self-contained: validated as it is, without resolving a root reference on each
            # validation (that lookup was ~5 % of a PATCH's CPU).
            root = _input_view(schema, pointer is not None and self._openapi_30)
        registry = self._registry
        if isinstance(target, dict):
            self._check(cls, _input_view(target, False))
        validator = cls(root, registry=registry, format_checker=cls.FORMAT_CHECKER)
        compiled = CompiledSchema(validator, schema_info(self.document, schema))
        self._cache[id(schema)] = compiled
        return compiled

    def _check(self, cls: type[Validator], schema: dict[str, Any]) -> None:
        """``cls.check_schema(schema)``, once per distinct schema text: a collection's POST,
        PUT and PATCH bodies (and copies of one schema across collections) are checked against
        the metaschema once, which was most of a 50-collection blueprint's start-up."""
        try:
            key = (cls, json.dumps(schema, sort_keys=True))
        except (TypeError, ValueError):  # not JSON text (YAML dates, say): check it every time
            cls.check_schema(schema)
            return
        if key not in self._checked:
            cls.check_schema(schema)
            self._checked.add(key)


def apply_defaults(body: dict[str, Any], info: SchemaInfo) -> dict[str, Any]:
    """A copy of ``body`` with schema defaults filled in for missing properties, recursively
    into nested objects that are present. A null is a value: it stays null."""
    out = dict(body)
    for name, value in info.defaults.items():
        if name not in out:
            out[name] = copy.deepcopy(value)
    for name, inner in info.nested.items():
        if isinstance(out.get(name), dict):
            out[name] = apply_defaults(out[name], inner)
    return out


def project(body: dict[str, Any], info: SchemaInfo) -> dict[str, Any]:
    """Response shaping: when the schema lists ``properties`` and does not set
    ``additionalProperties``, only those properties are returned."""
    if info.properties is None or info.additional_properties_set:
        return body
    allowed = set(info.properties)
    return {k: v for k, v in body.items() if k in allowed}
