"""The OpenAPI document a space publishes at ``/openapi.json``: the effective blueprint, made to
describe what the datastore really does.

The blueprint's own declarations are kept; the datastore adds what it knows and the author
usually leaves out:

- ``servers``: where this space is served (``/`` or ``/<space>``), not where the author's
  blueprint once lived (the Codehooks seed names codehooks.io).
- The error responses each operation can really produce, as ``application/problem+json`` with
  the datastore's problem schema, for every status the operation does not declare itself
  (``400`` everywhere; ``401`` everywhere, since a presented credential is always checked;
  ``403`` where a credential is needed and a rule or a read-only key can refuse; ``404`` for
  documents, nested collections, keys, jobs and dynamic collections (which may not take the
  name of a literal root such as ``queue``); ``409`` where a write can conflict; ``412``
  where ``If-Match`` / ``If-None-Match`` apply; ``413`` / ``415`` where a body is read;
  ``503`` everywhere, with ``Retry-After``), and ``304`` on document reads.
- The rules the datastore applies to path parameters (document ids, dynamic collection names,
  keys, topics) as ``pattern`` / length keywords, where the author set none.
- PATCH bodies as they are checked: a partial document, so the top-level ``required`` of the
  request schema is dropped, of plain fields (``propertyNames`` not starting with ``$``:
  those are update operators, which may not be mixed with fields).
- ``format: int64`` on integer schemas without a format (components, parameters, request
  bodies): bodies with integers outside the signed 64-bit range are refused (they cannot be
  stored exactly).
- Security schemes for the credentials the datastore accepts, required by operations whose
  rule is not ``public`` and that declare no ``security`` of their own.

Nothing here changes routing or validation: connexion and the handlers work from the effective
blueprint; this is only what is published (and what the conformance tests check against).
"""

from __future__ import annotations

import copy
from typing import Any

from datastore.blueprint.model import Blueprint, Kind, Operation, follow_refs
from datastore.blueprint.oas30 import document_30
from datastore.blueprint.publish_listing import add_query_parameters, widen_listing_answer
from datastore.ids import MAX_ID_LENGTH
from datastore.limits import KEYSPACE_PATTERN, MAX_DEAD_LISTED, MAX_KEY_LENGTH, MAX_TTL_MS
from datastore.types import INT64_MAX, INT64_MIN

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem: what went wrong, and for bad input every field at once.",
    "required": ["title", "status"],
    "properties": {
        "title": {"type": "string"},
        "status": {"type": "string", "pattern": "^[1-5][0-9][0-9]$"},
        "detail": {"type": "string"},
        "invalid-params": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "reason"],
                "properties": {"name": {"type": "string"}, "reason": {"type": "string"}},
                "additionalProperties": False,
            },
        },
        "extendedBy": {
            "type": "array",
            "description": "On a 409 for deleting an extended document: the documents extending it",
            "items": {"type": "string"},
        },
    },
}
PROBLEM_MEDIA_TYPE = "application/problem+json"
ID_PATTERN = r"^(?!\.\.?$)[^/\x00-\x1f\x7f]{1,LENGTH}$".replace("LENGTH", str(MAX_ID_LENGTH))
NAME_BODY = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
KEY_PATTERN = r"^[^\x00-\x1f\x7f]+$"
SPACE_ROUTES = ("openapi.json", "openapi.yaml", "ui")
"""Per-space paths answered before the blueprint's routes (``http/dispatch.py``)."""

_DESCRIPTIONS = {
    304: "Not Modified: If-None-Match names the current ETag",
    400: "Bad request: invalid-params names every offending field with a reason",
    401: "Unauthorized: a credential is needed, or the one presented is not valid",
    403: "Forbidden: the access rule refuses, or a read-only API key tried to write",
    404: "Not found",
    405: "Method Not Allowed: the path belongs to a more specific template without this method",
    409: "Conflict with the stored state",
    410: "Gone: the cursor is older than the retained change log; read again and follow anew",
    412: "Precondition Failed: If-Match or If-None-Match does not hold",
    413: "Payload Too Large: the body is over the configured limit",
    415: "Unsupported Media Type: the body must be JSON",
    503: "Service Unavailable: the database cannot be reached; retry after Retry-After seconds",
}
_WRITES = frozenset({"post", "put", "patch", "delete"})
_BODY_READERS = frozenset(
    {
        (Kind.COLLECTION, "post"),
        (Kind.DOCUMENT, "put"),
        (Kind.DOCUMENT, "patch"),
        (Kind.BYQUERY, "patch"),
        (Kind.KEYV, "put"),
        (Kind.KEYV_INCR, "put"),
        (Kind.KEYV_DECR, "put"),
        (Kind.QUEUE, "post"),
    }
)


def error_statuses(
    op: Operation, *, literal_roots: bool = False, shadowing: bool = False
) -> list[int]:
    """The error statuses (and 304) the datastore can answer ``op`` with; ``literal_roots``:
    the blueprint has paths with a literal first segment, which a dynamic collection may not
    be named after (404); ``shadowing``: a more specific template matches some of the
    operation's paths (``/{collection}/_count`` for ``/{collection}/{id}``), and a method it
    lacks is a 405 there (``http/dispatch.py``)."""
    key = (op.kind, op.method)
    nested = op.kind in (Kind.COLLECTION, Kind.BYQUERY, Kind.COUNT, Kind.CHANGES) and _depth(op) > 1
    # A dynamic collection exists while it holds a document (404 otherwise).
    nested = nested or (op.dynamic and op.kind is not Kind.DOCUMENT)
    codes = {400, 401, 503}
    if _needs_credential(op) and (op.method in _WRITES or op.acl is not None or not op.security):
        codes.add(403)
    if op.kind is Kind.BYQUERY and op.method in _WRITES:
        codes.add(403)  # the document PATCH/DELETE rule (or its absence) may refuse
    if (
        # A PUT whose rule reads the stored document answers a refused caller who may not
        # read it as if it did not exist (404).
        (
            op.kind is Kind.DOCUMENT
            and (op.method != "put" or _depth(op) > 1 or _guarded(op) or op.dynamic)
        )
        or nested
        or key
        in {
            (Kind.KEYV, "get"),
            (Kind.KEYV, "delete"),
            (Kind.QUEUE_JOB, "get"),
            (Kind.QUEUE_RETRY, "post"),
        }
    ):
        codes.add(404)
    if op.kind is Kind.DOCUMENT and op.method == "get":
        codes.add(304)
    if op.kind is Kind.CHANGES:
        codes.add(410)  # a cursor older than the retained log
    if (op.kind is Kind.DOCUMENT and op.method in _WRITES) or key in {
        (Kind.COLLECTION, "post"),
        (Kind.BYQUERY, "patch"),
        (Kind.KEYV_INCR, "put"),
        (Kind.KEYV_DECR, "put"),
        (Kind.QUEUE_RETRY, "post"),
    }:
        codes.add(409)
    if op.kind is Kind.DOCUMENT and op.method in ("put", "patch", "delete"):
        codes.add(412)
    if key in _BODY_READERS:
        codes |= {413, 415}
    if shadowing:
        codes.add(405)
    return sorted(codes)


def _shadowing(op: Operation, blueprint: Blueprint) -> bool:
    """Whether another template of the blueprint matches some paths of ``op``'s template and
    is more specific at the first segment where they differ (a literal against a parameter),
    without declaring ``op``'s method (then the dispatcher answers 405 for such a path)."""
    methods: dict[str, set[str]] = {}
    segments = {}
    for other in blueprint.operations.values():
        methods.setdefault(other.path, set()).add(other.method)
        segments[other.path] = other.segments
    for path, theirs in segments.items():
        if path == op.path or len(theirs) != len(op.segments) or op.method in methods[path]:
            continue
        pairs = list(zip(op.segments, theirs, strict=True))
        if not all(a.param or b.param or a.text == b.text for a, b in pairs):
            continue  # no path matches both
        differing = [(a, b) for a, b in pairs if (a.param is None) != (b.param is None)]
        if differing and differing[0][0].param is not None:
            return True  # the other template is a literal where this one has a parameter
    return False


def _needs_credential(op: Operation) -> bool:
    return (op.acl or "").strip().lower() != "public"


def _guarded(op: Operation) -> bool:
    """Whether the operation's rule reads the document (so a refusal may be a 404)."""
    return "document." in (op.acl or "")


def _depth(op: Operation) -> int:
    """How many collections deep the operation's collection is (``/a/{x}/b`` is 2)."""
    segments = op.segments
    if op.kind in (Kind.BYQUERY, Kind.COUNT, Kind.CHANGES):
        segments = segments[:-1]
    return (len(segments) + 1) // 2


def published_document(
    document: dict[str, Any],
    blueprint: Blueprint,
    base_path: str,
    *,
    max_limit: int,
    max_wait: int = 30,
) -> dict[str, Any]:
    """The document to serve at ``<base_path>/openapi.json`` (a new dict; ``document`` is the
    effective blueprint and is not changed)."""
    out = copy.deepcopy(document)
    out["servers"] = [{"url": base_path or "/"}]
    components = out.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem_name = _free_name(schemas, "DatastoreProblem")
    schemas[problem_name] = copy.deepcopy(PROBLEM_SCHEMA)
    problem_ref = {"$ref": f"#/components/schemas/{problem_name}"}
    schemes = components.setdefault("securitySchemes", {})
    bearer = _free_name(schemes, "datastoreBearer")
    apikey = _free_name(schemes, "datastoreApiKey")
    uses_schemes = False
    reserved = _reserved_first_segments(out)
    paths = out.get("paths") or {}
    for op in blueprint.operations.values():
        item = paths.get(op.path)
        spec = item.get(op.method) if isinstance(item, dict) else None
        if not isinstance(item, dict) or not isinstance(spec, dict):
            continue
        _add_errors(
            out,
            spec,
            op,
            problem_ref,
            literal_roots=len(reserved) > len(SPACE_ROUTES),
            shadowing=_shadowing(op, blueprint),
        )
        add_query_parameters(out, item, spec, op, max_limit=max_limit, max_wait=max_wait)
        _keyv_parameters(spec, op)
        _constrain_parameters(out, item, spec, _parameter_rules(op, reserved, max_limit))
        widen_listing_answer(out, spec, op)
        _counter_values(out, spec, op)
        if op.kind in (Kind.DOCUMENT, Kind.BYQUERY) and op.method == "patch":
            _patch_body(out, spec)
        if _needs_credential(op):
            uses_schemes |= _accept_any_credential(out, spec, bearer, apikey)
    if uses_schemes:
        schemes[bearer] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        schemes[apikey] = {"type": "apiKey", "in": "header", "name": "x-apikey"}
    if not schemes:
        del components["securitySchemes"]
    _mark_int64(
        [components.get(k) for k in ("schemas", "parameters", "requestBodies")]
        + [
            op.get(part)
            for item in paths.values()
            if isinstance(item, dict)
            for op in (item, *item.values())
            if isinstance(op, dict)
            for part in ("parameters", "requestBody")
        ]
    )
    if str(out.get("openapi", "")).startswith("3.0"):
        document_30(out)
    return out


def _accept_any_credential(
    document: dict[str, Any], spec: dict[str, Any], bearer: str, apikey: str
) -> bool:
    """Any valid credential is accepted (SPEC §6): a bearer token or an API key, whatever the
    operation's ``security`` names. Each requirement it declares stays; the kinds of
    credential it does not mention are added as alternatives. True when one was added."""
    requirements = spec.get("security", document.get("security"))
    if not isinstance(requirements, list):
        requirements = []
    if any(isinstance(r, dict) and not r for r in requirements):
        return False  # an empty requirement: anonymous access is declared already
    schemes = (document.get("components") or {}).get("securitySchemes") or {}
    kinds = set()
    for requirement in requirements:
        for name in requirement if isinstance(requirement, dict) else ():
            scheme = follow_refs(document, schemes.get(name))
            if isinstance(scheme, dict):
                kinds.add(_credential_kind(scheme))
    added: list[dict[str, list[str]]] = [
        {name: []} for kind, name in (("bearer", bearer), ("apikey", apikey)) if kind not in kinds
    ]
    if added:
        spec["security"] = [*requirements, *added]
    return bool(added)


def _credential_kind(scheme: dict[str, Any]) -> str | None:
    if scheme.get("type") == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
        return "bearer"
    header = scheme.get("type") == "apiKey" and scheme.get("in") == "header"
    if header and str(scheme.get("name", "")).lower() == "x-apikey":
        return "apikey"
    return None


def _free_name(taken: dict[str, Any], name: str) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}{n}"
    return candidate


def _add_errors(
    document: dict[str, Any],
    spec: dict[str, Any],
    op: Operation,
    problem_ref: dict[str, Any],
    *,
    literal_roots: bool,
    shadowing: bool,
) -> None:
    responses = spec.setdefault("responses", {})
    for code, raw in list(responses.items()):
        declared_answer = follow_refs(document, raw)
        error = str(code)[:1] in ("4", "5") or str(code).upper() == "DEFAULT"
        if error and isinstance(declared_answer, dict) and not declared_answer.get("content"):
            # The author's bare error answer: what the datastore sends is a problem.
            responses[code] = {
                **copy.deepcopy(declared_answer),
                "content": {PROBLEM_MEDIA_TYPE: {"schema": dict(problem_ref)}},
            }
    declared = {str(code).upper() for code in responses}
    if "DEFAULT" in declared:
        return  # the author's default covers every other status
    for status in error_statuses(op, literal_roots=literal_roots, shadowing=shadowing):
        if str(status) in declared or f"{str(status)[0]}XX" in declared:
            continue
        response: dict[str, Any] = {"description": _DESCRIPTIONS[status]}
        if status != 304:
            response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": dict(problem_ref)}}
        if status == 503:
            response["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before retrying",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 0},
                }
            }
        responses[str(status)] = response


def _reserved_first_segments(document: dict[str, Any]) -> list[str]:
    """First path segments a dynamic ``/{collection}`` cannot take: literal roots of the
    blueprint's other paths (``keyv``, ``queue``...) and the per-space system routes."""
    names = set(SPACE_ROUTES)
    for path in document.get("paths") or {}:
        first = str(path).strip("/").split("/", 1)[0]
        if first and not first.startswith("{"):
            names.add(first)
    return sorted(names)


def _name_pattern(reserved: list[str]) -> str:
    import re

    if not reserved:
        return "^" + NAME_BODY
    alternatives = "|".join(re.escape(name) for name in reserved)
    return f"^(?!(?:{alternatives})$)" + NAME_BODY


def _parameter_rules(
    op: Operation, reserved: list[str], max_limit: int
) -> dict[tuple[str, str], dict[str, Any]]:
    """(location, name) → the keywords the datastore's checks of that parameter amount to."""
    rules: dict[tuple[str, str], dict[str, Any]] = {}
    keyv = op.kind in (Kind.KEYV, Kind.KEYV_INCR, Kind.KEYV_DECR, Kind.KEYV_LIST)
    for index, segment in enumerate(op.segments):
        if segment.param is None:
            continue
        if keyv:
            rule: dict[str, Any] = {"pattern": KEY_PATTERN, "maxLength": MAX_KEY_LENGTH}
        elif op.kind in (Kind.QUEUE, Kind.QUEUE_JOB, Kind.QUEUE_RETRY):
            rule = {"pattern": "^" + NAME_BODY if index == 1 else ID_PATTERN}
        elif index == 0:
            rule = {"pattern": _name_pattern(reserved)}
        elif index % 2 == 1:
            rule = {"pattern": ID_PATTERN}
        else:
            continue
        rules[("path", segment.param)] = rule
    if keyv:
        rules[("query", "keyspace")] = {"pattern": KEYSPACE_PATTERN}
    if op.kind is Kind.KEYV and op.method == "put":
        rules[("query", "ttl")] = {"minimum": 1, "maximum": MAX_TTL_MS}
    if op.kind is Kind.KEYV_LIST:
        rules[("query", "limit")] = {"minimum": 1, "maximum": max_limit}
    if op.kind is Kind.QUEUE and op.method == "get":
        rules[("query", "limit")] = {"minimum": 1, "maximum": MAX_DEAD_LISTED}
    if op.kind in (Kind.COLLECTION, Kind.COUNT, Kind.BYQUERY) and op.method in ("get", "delete"):
        rules[("query", "limit")] = {"minimum": 0, "maximum": max_limit}
        rules[("query", "offset")] = {"minimum": 0}
    return rules


_FIXED = ("enum", "const")


def _constrain_parameters(
    document: dict[str, Any],
    item: dict[str, Any],
    spec: dict[str, Any],
    rules: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """Add the datastore's rules to the parameters of an operation: each keyword the author's
    schema does not set itself (none to an ``enum`` or ``const``)."""
    if not rules:
        return
    # Path-item parameters are shared by the item's operations: copy the ones a rule applies
    # to into the operation (an operation parameter overrides the path item's of that name).
    own = spec.setdefault("parameters", [])

    def key(raw: Any) -> tuple[str, str] | None:
        param = follow_refs(document, raw)
        if isinstance(param, dict) and "name" in param and "in" in param:
            return str(param["in"]), str(param["name"])
        return None

    own_keys = {key(p) for p in own}
    for raw in item.get("parameters", []):
        found = key(raw)
        if found in rules and found not in own_keys:
            own.append(copy.deepcopy(follow_refs(document, raw)))
            own_keys.add(found)
    if not own:
        del spec["parameters"]
        return
    for index, raw in enumerate(own):
        found = key(raw)
        rule = rules.get(found) if found is not None else None
        if rule is None:
            continue
        param = copy.deepcopy(follow_refs(document, raw))
        schema = follow_refs(document, param.get("schema"))
        if not isinstance(schema, dict) or any(k in schema for k in _FIXED):
            continue
        wanted = "string" if "pattern" in rule else "integer"
        if schema.get("type", "string") != wanted:
            continue
        param["schema"] = {**rule, **schema}  # the author's own keywords win
        own[index] = param


def _keyv_parameters(spec: dict[str, Any], op: Operation) -> None:
    """Every key-value operation takes ``keyspace`` (``http/kv_handlers.py``)."""
    if op.kind not in (Kind.KEYV, Kind.KEYV_INCR, Kind.KEYV_DECR, Kind.KEYV_LIST):
        return
    own = spec.setdefault("parameters", [])
    if not any(isinstance(p, dict) and p.get("name") == "keyspace" for p in own):
        own.append(
            {
                "name": "keyspace",
                "in": "query",
                "description": "A separate set of keys (default: the space's own)",
                "schema": {"type": "string", "pattern": KEYSPACE_PATTERN},
            }
        )


def _counter_values(document: dict[str, Any], spec: dict[str, Any], op: Operation) -> None:
    """``GET /keyv/{key}`` answers what was stored: a PUT's value, or the number ``_incr`` /
    ``_decr`` keep (SPEC §7). A declared answer that allows no number is widened."""
    if (op.kind, op.method) != (Kind.KEYV, "get"):
        return
    response = follow_refs(document, (spec.get("responses") or {}).get("200"))
    media = (response or {}).get("content", {}).get("application/json") if response else None
    if not isinstance(media, dict) or not isinstance(media.get("schema"), dict):
        return
    response = copy.deepcopy(response)
    response["content"]["application/json"]["schema"] = {
        "anyOf": [media["schema"], {"type": "number", "description": "A counter (_incr/_decr)"}]
    }
    spec["responses"]["200"] = response


FIELD_NAME = {"pattern": "^(?:[^$]|$)"}
"""A plain PATCH field may not start with ``$``: such keys are update operators, and a body
mixing the two is refused (SPEC §5)."""


def _patch_body(document: dict[str, Any], spec: dict[str, Any]) -> None:
    """A PATCH body as it is checked: a partial document (the top-level ``required`` of its
    schema dropped) of plain fields (update operators are described, not generated)."""
    body = follow_refs(document, spec.get("requestBody"))
    if not isinstance(body, dict):
        return
    body = copy.deepcopy(body)
    changed = False
    for media in (body.get("content") or {}).values():
        if not isinstance(media, dict) or "schema" not in media:
            continue
        schema = follow_refs(document, media["schema"])
        if not isinstance(schema, dict) or schema.get("type", "object") != "object":
            continue
        patch = {k: copy.deepcopy(v) for k, v in schema.items() if k != "required"}
        patch.setdefault("propertyNames", FIELD_NAME)
        patch["description"] = (
            str(schema.get("description", "")) + " As a PATCH body: any subset of the "
            "properties, or update operators ($set, $unset, $inc, $push, $pull, $pullAll, "
            "$pop, $addToSet, $rename) alone."
        ).strip()
        media["schema"] = patch
        changed = True
    if changed:
        spec["requestBody"] = body


NO_NUL = "^[^\\x00]*$"
"""Text may not hold U+0000 (PostgreSQL cannot store it; refused on both backends)."""


def _mark_int64(node: Any) -> None:
    """The limits every request is held to, on the schemas under ``node`` (in place): integers
    ``format: int64`` within the signed 64-bit range (wider ones cannot be stored exactly),
    strings without U+0000 (a ``pattern`` where the author set none, no ``format``, no
    ``enum``). The author's inline response schemas are left as written."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            kind = current.get("type")
            kinds = kind if isinstance(kind, list) else [kind]
            if "integer" in kinds and "format" not in current:
                current["format"] = "int64"
            if "integer" in kinds and current.get("format") == "int64":
                current.setdefault("minimum", INT64_MIN)
                current.setdefault("maximum", INT64_MAX)
            fixed = any(k in current for k in ("enum", "const", "format", "pattern"))
            if "string" in kinds and not fixed:
                current["pattern"] = NO_NUL
            stack.extend(
                v
                for k, v in current.items()
                if k not in ("example", "examples", "default", "enum", "const")
            )
        elif isinstance(current, list):
            stack.extend(current)
