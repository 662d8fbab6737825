"""The handler registry: which generic handler serves an operation kind and method.

Only ``app`` imports this module; the handler modules import nothing of each other's.
"""

from __future__ import annotations

from starlette.responses import Response

from datastore.blueprint.model import Kind
from datastore.errors import MethodNotAllowed
from datastore.http import changes, handlers, kv_handlers, queue_handlers
from datastore.http.endpoint import Call, Handler


async def not_allowed(call: Call) -> Response:
    """A method the path's shape does not allow (the linter refuses such blueprints; this
    covers documents handed to ``create_app`` directly)."""
    raise MethodNotAllowed(f"{call.op.method.upper()} is not allowed on {call.op.path}.")


HANDLERS: dict[tuple[Kind, str], Handler] = {
    (Kind.DOCUMENT, "get"): handlers.get_document,
    (Kind.DOCUMENT, "put"): handlers.put_document,
    (Kind.DOCUMENT, "patch"): handlers.patch_document,
    (Kind.DOCUMENT, "delete"): handlers.delete_document,
    (Kind.COLLECTION, "get"): handlers.list_documents,
    (Kind.COLLECTION, "post"): handlers.create_document,
    (Kind.COUNT, "get"): handlers.count_documents,
    (Kind.CHANGES, "get"): changes.changes_feed,
    (Kind.BYQUERY, "delete"): handlers.delete_by_query,
    (Kind.BYQUERY, "patch"): handlers.update_by_query,
    (Kind.KEYV, "get"): kv_handlers.kv_get,
    (Kind.KEYV, "put"): kv_handlers.kv_put,
    (Kind.KEYV, "delete"): kv_handlers.kv_delete,
    (Kind.KEYV_INCR, "put"): kv_handlers.kv_incr,
    (Kind.KEYV_DECR, "put"): kv_handlers.kv_decr,
    (Kind.KEYV_LIST, "get"): kv_handlers.kv_list,
    (Kind.QUEUE, "post"): queue_handlers.enqueue,
    (Kind.QUEUE_JOB, "get"): queue_handlers.job_status,
}
"""Every generic handler by operation kind and method."""


def handler_for(kind: Kind, method: str) -> Handler:
    """The generic handler of an operation kind and method."""
    return HANDLERS.get((kind, method), not_allowed)
