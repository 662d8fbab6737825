"""Response shaping: which status code, whether a body, ETag and Location headers.

The natural status of an outcome (201 for a create, 200/204 for a replace...) is adjusted to
what the operation declares: when it declares exactly one 2xx response, that code is used;
a declared response without content means no body.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from starlette.responses import Response

from datastore.blueprint.model import Operation
from datastore.blueprint.schemas import SchemaInfo
from datastore.documents.service import etag
from datastore.documents.sources import FAMILY_SOURCES, Lineage, render
from datastore.http.endpoint import Call
from datastore.storage.documents import StoredDocument

JSON_MEDIA_TYPE = "application/json"


def pick_status(op: Operation, preferred: Sequence[int]) -> tuple[int, bool]:
    """(status, send a body) for an outcome whose natural codes are ``preferred`` (best first).

    With one declared 2xx, that one; else the first preferred code the operation declares;
    else the first preferred code. A body goes out unless the chosen declared response has no
    content or the status is 204.
    """
    success = op.success_responses
    chosen = None
    if len(success) == 1:
        chosen = success[0]
    else:
        declared = {r.status: r for r in success}
        chosen = next((declared[c] for c in preferred if c in declared), None)
    if chosen is None:
        status = preferred[0]
        return status, status != 204
    return chosen.status, chosen.has_content and chosen.status != 204


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response encoded with orjson."""
    return Response(
        orjson.dumps(body), status_code=status, media_type=JSON_MEDIA_TYPE, headers=headers
    )


def maybe_body(
    body: Any, status: int, with_body: bool, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response, or an empty one when the operation declares no body."""
    if with_body:
        return json_response(body, status, headers)
    return Response(status_code=status, headers=headers)


async def resolved(
    call: Call, docs: list[StoredDocument], info: SchemaInfo | None
) -> dict[int, tuple[dict[str, Any], Lineage]]:
    """Effective (inherited) bodies, and lineages when the schema shows them."""
    return await call.space.documents.resolve(docs, family=shows_lineage(info))


def shows_lineage(info: SchemaInfo | None) -> bool:
    """Whether a schema shows a document's lineage (``extendedBy`` and the like)."""
    return info is not None and bool(FAMILY_SOURCES & set(info.sources.values()))


async def rendered(call: Call, doc: StoredDocument) -> dict[str, Any]:
    """The response form of a document for this operation."""
    info = call.endpoint.response_info
    body, lineage = (await resolved(call, [doc], info))[doc.pk]
    return render(doc, info, dynamic=call.op.dynamic, body=body, lineage=lineage)


def doc_headers(doc: StoredDocument) -> dict[str, str]:
    """Headers every document response carries."""
    return {"ETag": etag(doc)}
