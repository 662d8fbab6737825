"""Reading blueprints: YAML or JSON with line:column kept, file ``$ref``s bundled in.

Parsing goes through PyYAML's node graph (never through connexion, which would render the file
through Jinja2 first), so every value's position is known: ``LoadedBlueprint.locate`` maps a
JSON pointer of the bundled document back to the file, line and column it came from.

Bundling: every ``$ref`` to another file (``./schemas/event.json``,
``common.yaml#/definitions/Id``) is resolved relative to the file that contains it; the
referenced file is placed once under ``components/schemas/<name>`` (named after the file) and
the reference rewritten to point there, fragment kept. References inside that file to itself
(``#/definitions/x``) are rewritten to its new home, and its own file references are bundled the
same way, so cycles between files end in internal references. The result references no file.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from datastore.blueprint.diagnostics import BlueprintError, Diagnostic
from datastore.blueprint.model import HTTP_METHODS, split_path
from datastore.blueprint.oas30 import SCHEMA_KEYWORDS

Pointer = tuple[str | int, ...]
Location = tuple[str, int, int]
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class _Parsed:
    value: Any
    positions: dict[Pointer, Location]


@dataclass(frozen=True)
class LoadedBlueprint:
    """A bundled blueprint document and where each of its parts was written."""

    path: Path
    document: dict[str, Any]
    positions: dict[Pointer, Location] = field(default_factory=dict, compare=False)

    def locate(self, pointer: Sequence[str | int]) -> Location:
        """(file, line, column) of the node at ``pointer``, or of its nearest located ancestor."""
        key = tuple(pointer)
        while key:
            found = self.positions.get(key)
            if found is not None:
                return found
            key = key[:-1]
        return self.positions.get((), (str(self.path), 1, 1))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _jsonable_scalar(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value


def parse_file(path: Path, problems: list[Diagnostic]) -> _Parsed | None:
    """Parse one YAML/JSON file keeping positions; problems are appended to ``problems``."""
    display = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Diagnostic(display, 1, 1, "error", "file", f"cannot read: {exc}"))
        return None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = f"{exc.problem or exc.context or 'invalid YAML'}".strip()
        problems.append(Diagnostic(display, line, col, "error", "yaml", message))
        return None
    except yaml.YAMLError as exc:
        problems.append(Diagnostic(display, 1, 1, "error", "yaml", str(exc)))
        return None
    finally:
        loader.dispose()
    positions: dict[Pointer, Location] = {}
    if node is None:
        problems.append(Diagnostic(display, 1, 1, "error", "yaml", "the file is empty"))
        return None
    value = _convert(node, (), display, positions, problems, loader)
    return _Parsed(value, positions)


def _convert(
    node: Any,
    pointer: Pointer,
    display: str,
    positions: dict[Pointer, Location],
    problems: list[Diagnostic],
    loader: Any,
) -> Any:
    positions[pointer] = (display, node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _jsonable_scalar(loader.construct_object(key_node, deep=True))
            mark = key_node.start_mark
            if not isinstance(key, str):
                key = str(key).lower() if isinstance(key, bool) else str(key)
            if key in out:
                problems.append(
                    Diagnostic(
                        display,
                        mark.line + 1,
                        mark.column + 1,
                        "error",
                        "duplicate-key",
                        f"the key {key!r} appears more than once in this mapping",
                    )
                )
            child = (*pointer, key)
            out[key] = _convert(value_node, child, display, positions, problems, loader)
            positions.setdefault(child, (display, mark.line + 1, mark.column + 1))
            positions[(*child, "<key>")] = (display, mark.line + 1, mark.column + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(item, (*pointer, index), display, positions, problems, loader)
            for index, item in enumerate(node.value)
        ]
    return _jsonable_scalar(loader.construct_object(node, deep=True))


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _escape(token: str | int) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def resolve_pointer(document: Any, fragment: str) -> Any:
    """The node at a JSON pointer fragment (``/components/schemas/X``); raises KeyError."""
    node = document
    if not fragment or fragment == "/":
        return node
    for raw in fragment.lstrip("/").split("/"):
        token = _unescape(raw)
        if isinstance(node, list):
            node = node[int(token)]
        elif isinstance(node, dict):
            node = node[token]
        else:
            raise KeyError(token)
    return node


def value_at(document: Any, pointer: Sequence[str | int]) -> Any:
    """The node at a pointer given as a tuple of keys; raises KeyError/IndexError."""
    node = document
    for part in pointer:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


class _Bundler:
    """Pulls file references into ``components/schemas`` (see the module docstring)."""

    def __init__(self, entry: Path, document: dict[str, Any], problems: list[Diagnostic]) -> None:
        self.entry = entry.resolve()
        self.document = document
        self.problems = problems
        self.positions: dict[Pointer, Location] = {}
        self.names: dict[Path, str] = {}
        self.parsed: dict[Path, _Parsed | None] = {}
        components = document.setdefault("components", {})
        if not isinstance(components, dict):
            components = document["components"] = {}
        schemas = components.setdefault("schemas", {})
        self.schemas: dict[str, Any] = schemas if isinstance(schemas, dict) else {}
        self.taken = set(self.schemas)

    def run(self, positions: dict[Pointer, Location]) -> None:
        self.positions.update(positions)
        self._walk(self.document, (), self.entry, None, positions)

    def _walk(
        self,
        node: Any,
        pointer: Pointer,
        here: Path,
        home: Pointer | None,
        positions: dict[Pointer, Location],
    ) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                node["$ref"] = self._rewrite(ref, (*pointer, "$ref"), here, home, positions)
            for key, child in list(node.items()):
                if key != "$ref":
                    self._walk(child, (*pointer, key), here, home, positions)
        elif isinstance(node, list):
            for index, child in enumerate(node):
                self._walk(child, (*pointer, index), here, home, positions)

    def _rewrite(
        self,
        ref: str,
        pointer: Pointer,
        here: Path,
        home: Pointer | None,
        positions: dict[Pointer, Location],
    ) -> str:
        target, _, fragment = ref.partition("#")
        if not target:
            if home is None:
                return ref  # an internal reference of the entry file
            return "#/" + "/".join(_escape(p) for p in home) + fragment
        if re.match(r"^[a-z][a-z0-9+.-]*://", target):
            self._problem(positions, pointer, f"remote references are not supported: {ref}")
            return ref
        path = (here.parent / target).resolve()
        name = self._component(path, positions, pointer)
        if name is None:
            return ref
        new_home: Pointer = ("components", "schemas", name)
        if fragment:
            try:
                resolve_pointer(self.schemas[name], fragment)
            except (KeyError, IndexError, ValueError):
                self._problem(positions, pointer, f"{ref}: no {fragment} in {target}")
        return "#/" + "/".join(_escape(p) for p in new_home) + fragment

    def _component(
        self, path: Path, positions: dict[Pointer, Location], pointer: Pointer
    ) -> str | None:
        if path in self.names:
            return self.names[path]
        if not path.is_file():
            self._problem(positions, pointer, f"the referenced file does not exist: {path}")
            return None
        parsed = parse_file(path, self.problems)
        if parsed is None:
            return None
        name = self._name_for(path)
        self.names[path] = name
        content = parsed.value
        self.schemas[name] = content
        home: Pointer = ("components", "schemas", name)
        for sub, location in parsed.positions.items():
            self.positions[(*home, *sub)] = location
        moved = {(*home, *sub): loc for sub, loc in parsed.positions.items()}
        self._walk(content, home, path, home, moved)
        return name

    def _name_for(self, path: Path) -> str:
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem) or "schema"
        name, n = base, 1
        while name in self.taken:
            n += 1
            name = f"{base}_{n}"
        self.taken.add(name)
        return name

    def _problem(self, positions: dict[Pointer, Location], pointer: Pointer, message: str) -> None:
        file, line, col = positions.get(pointer) or positions.get(pointer[:-1], ("?", 1, 1))
        self.problems.append(Diagnostic(file, line, col, "error", "ref", message))


def load_blueprint(path: str | Path) -> LoadedBlueprint:
    """Read and bundle a blueprint; raises BlueprintError listing every problem found."""
    loaded, problems = read_blueprint(path)
    errors = [p for p in problems if p.severity == "error"]
    if loaded is None or errors:
        raise BlueprintError(errors or problems)
    return loaded


def read_blueprint(path: str | Path) -> tuple[LoadedBlueprint | None, list[Diagnostic]]:
    """Read and bundle a blueprint, returning the problems instead of raising."""
    entry = Path(path)
    problems: list[Diagnostic] = []
    parsed = parse_file(entry, problems)
    if parsed is None:
        return None, problems
    if not isinstance(parsed.value, dict):
        problems.append(
            Diagnostic(_display(entry), 1, 1, "error", "openapi", "a blueprint must be a mapping")
        )
        return None, problems
    document = parsed.value
    had_components = isinstance(document.get("components"), dict)
    had_schemas = had_components and "schemas" in document["components"]
    bundler = _Bundler(entry, document, problems)
    bundler.run(parsed.positions)
    if not bundler.schemas and not had_schemas:
        document["components"].pop("schemas", None)
        if not had_components and not document["components"]:
            document.pop("components")
    return LoadedBlueprint(entry, document, bundler.positions), problems


def bundle_document(loaded: LoadedBlueprint) -> dict[str, Any]:
    """The document ``datastore bundle`` writes: the blueprint with every file inlined."""
    return copy.deepcopy(loaded.document)


def dump_yaml(document: dict[str, Any]) -> str:
    """YAML text of a document, keys in their order."""
    return str(yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100))


# -- the view of a blueprint handed to connexion -------------------------------------------


def _deref(document: dict[str, Any], node: Any, seen: frozenset[str] = frozenset()) -> Any:
    """``node`` with internal references replaced by their targets (cycles cut to ``{}``)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            if ref in seen:
                return {}
            try:
                target = resolve_pointer(document, ref[1:])
            except (KeyError, IndexError, ValueError):
                return {}
            return _deref(document, target, seen | {ref})
        return {k: _deref(document, v, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [_deref(document, v, seen) for v in node]
    return node


def _schema_30(schema: Any) -> Any:
    """A JSON Schema (any draft) reduced to what OpenAPI 3.0 accepts."""
    if not isinstance(schema, dict):
        return {}
    out: dict[str, Any] = {}
    kind = schema.get("type")
    if isinstance(kind, list):
        non_null = [t for t in kind if t != "null"]
        if len(non_null) == 1:
            out["type"] = non_null[0]
        if "null" in kind:
            out["nullable"] = True
    elif isinstance(kind, str) and kind != "null":
        out["type"] = kind
    if "const" in schema:
        out["enum"] = [schema["const"]]
    for key, value in schema.items():
        if key in ("type", "const") or key not in SCHEMA_KEYWORDS:
            continue
        if key in ("allOf", "oneOf", "anyOf") and isinstance(value, list):
            out[key] = [_schema_30(v) for v in value]
        elif key in ("not", "items") and isinstance(value, dict):
            out[key] = _schema_30(value)
        elif key == "properties" and isinstance(value, dict):
            out[key] = {k: _schema_30(v) for k, v in value.items()}
        elif key == "additionalProperties" and isinstance(value, dict):
            out[key] = _schema_30(value)
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        else:
            out[key] = value
    return out


def path_sort_key(path: str) -> tuple[tuple[int, str], ...]:
    """Order paths so that, segment by segment, a literal comes before a template."""
    return tuple((1 if s.param else 0, s.text) for s in split_path(path))


def _parameters(document: dict[str, Any], params: Any) -> list[dict[str, Any]]:
    out = []
    for param in params if isinstance(params, list) else []:
        param = _deref(document, param)
        if not isinstance(param, dict) or "name" not in param or "in" not in param:
            continue
        kept = {
            k: v
            for k, v in param.items()
            if k in ("name", "in", "required", "style", "explode", "allowEmptyValue")
        }
        kept["schema"] = _schema_30(param.get("schema", {}))
        if param["in"] == "path":
            kept["required"] = True
        out.append(kept)
    return out


def connexion_view(document: dict[str, Any]) -> dict[str, Any]:
    """The copy of a blueprint connexion routes and validates parameters with.

    OpenAPI 3.0.3 (connexion rejects 3.1); paths ordered literal-first; every operation's id is
    ``"<method> <path>"``; parameter schemas dereferenced and reduced to 3.0; request bodies keep
    their media types with empty schemas (the datastore validates bodies itself); responses keep
    only descriptions; no components and no security (the datastore authenticates and applies
    access rules itself, so connexion's security middleware has nothing to do).
    """
    raw_paths = document.get("paths") or {}
    paths: dict[str, Any] = {}
    for path in sorted(raw_paths, key=path_sort_key):
        item = _deref(document, raw_paths[path])
        if not isinstance(item, dict):
            continue
        view: dict[str, Any] = {}
        if "parameters" in item:
            view["parameters"] = _parameters(document, item["parameters"])
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            view[method] = _operation_view(document, method, path, operation)
        paths[path] = view
    result: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": str((document.get("info") or {}).get("title", "blueprint")),
            "version": str((document.get("info") or {}).get("version", "0")),
        },
        "paths": paths,
    }
    return result


def _operation_view(
    document: dict[str, Any], method: str, path: str, operation: dict[str, Any]
) -> dict[str, Any]:
    view: dict[str, Any] = {"operationId": f"{method} {path}"}
    if "parameters" in operation:
        view["parameters"] = _parameters(document, operation["parameters"])
    body = _deref(document, operation.get("requestBody"))
    if isinstance(body, dict) and isinstance(body.get("content"), dict):
        view["requestBody"] = {
            "required": bool(body.get("required", False)),
            "content": {media: {"schema": {}} for media in body["content"]},
        }
    responses = {}
    for code, response in (operation.get("responses") or {}).items():
        response = _deref(document, response)
        description = response.get("description", "") if isinstance(response, dict) else ""
        responses[str(code)] = {"description": str(description)}
    view["responses"] = responses or {"default": {"description": ""}}
    return view
