"""PLACEHOLDER (replaced by the schemas branch): compile JSON Schemas once, report every error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema

from datastore.errors import InvalidParam, ValidationFailed


@dataclass(frozen=True)
class SchemaInfo:
    """Facts about a top-level object schema."""

    sources: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    property_types: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    properties: tuple[str, ...] | None = None
    additional_properties_set: bool = False
    id_property: str | None = None


class CompiledSchema:
    """A schema compiled once."""

    def __init__(self, schema: dict[str, Any], registry: Any, resolve: Any) -> None:
        self.schema = resolve(schema)
        props = self.schema.get("properties") if isinstance(self.schema, dict) else None
        sources: dict[str, str] = {}
        defaults: dict[str, Any] = {}
        if isinstance(props, dict):
            for name, sub in props.items():
                sub = resolve(sub)
                if isinstance(sub, dict) and isinstance(sub.get("x-datastore-source"), str):
                    sources[name] = sub["x-datastore-source"].removeprefix("document.")
                if isinstance(sub, dict) and "default" in sub:
                    defaults[name] = sub["default"]
        id_prop = next((k for k, v in sources.items() if v == "$id"), None)
        if id_prop is None and isinstance(props, dict) and "_id" in props:
            id_prop = "_id"
        self.info = SchemaInfo(
            sources=sources,
            defaults=defaults,
            properties=tuple(props) if isinstance(props, dict) else None,
            additional_properties_set="additionalProperties" in self.schema,
            id_property=id_prop,
        )
        input_schema = dict(self.schema)
        if sources and isinstance(props, dict):
            input_schema["properties"] = {k: v for k, v in props.items() if k not in sources}
            input_schema["required"] = [
                r for r in self.schema.get("required", []) if r not in sources
            ]
        cls = jsonschema.validators.validator_for(input_schema, jsonschema.Draft202012Validator)
        self._full = cls(input_schema, registry=registry, format_checker=cls.FORMAT_CHECKER)
        partial = dict(input_schema)
        partial.pop("required", None)
        self._partial = cls(partial, registry=registry, format_checker=cls.FORMAT_CHECKER)

    def errors(self, instance: Any, *, partial: bool = False) -> list[InvalidParam]:
        """Every problem of ``instance``."""
        validator = self._partial if partial else self._full
        out = []
        for error in validator.iter_errors(instance):
            path = ".".join(str(p) for p in error.absolute_path) or "body"
            out.append(InvalidParam(path, error.message[:200]))
        return out

    def validate(self, instance: Any, *, partial: bool = False) -> None:
        """Raise ValidationFailed listing every problem."""
        errors = self.errors(instance, partial=partial)
        if errors:
            raise ValidationFailed(invalid_params=errors)


class SchemaCompiler:
    """Compiles schemas of one blueprint."""

    def __init__(self, document: dict[str, Any], *, openapi_version: str) -> None:
        self.document = document
        resource = referencing.Resource.from_contents(
            document, default_specification=referencing.jsonschema.DRAFT202012
        )
        self.registry: Any = referencing.Registry().with_resource("", resource)
        self._cache: dict[int, CompiledSchema] = {}

    def _resolve(self, schema: Any) -> Any:
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
            ref = schema["$ref"]
            if not ref.startswith("#/"):
                return schema
            node: Any = self.document
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            schema = node
        return schema

    def compile(self, schema: dict[str, Any]) -> CompiledSchema:
        """The compiled schema (cached)."""
        key = id(schema)
        if key not in self._cache:
            self._cache[key] = CompiledSchema(schema, self.registry, self._resolve)
        return self._cache[key]


def apply_defaults(body: dict[str, Any], info: SchemaInfo) -> dict[str, Any]:
    """Fill defaults for missing or null properties."""
    out = dict(body)
    for name, value in info.defaults.items():
        if out.get(name) is None:
            out[name] = value
    return out


def project(body: dict[str, Any], info: SchemaInfo) -> dict[str, Any]:
    """Keep only declared properties when the schema lists them and sets no
    additionalProperties."""
    if info.properties is None or info.additional_properties_set:
        return body
    return {k: v for k, v in body.items() if k in info.properties}
