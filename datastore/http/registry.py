"""The handler registry: which generic handler serves an operation kind and method.

Only ``app`` imports this module; the handler modules import nothing of each other's.
"""

from __future__ import annotations

from starlette.responses import Response

from datastore.blueprint.model import Kind
from datastore.errors import MethodNotAllowed
from datastore.http import changes, handlers, kv_handlers, queue_handlers
from datastore.http.endpoint import Call, Handler
from datastore.http.guard import require
from datastore.http.security import context


async def not_allowed(call: Call) -> Response:
    """A method the path's shape does not allow (the linter refuses such blueprints; this
    covers documents handed to ``create_app`` directly)."""
    raise MethodNotAllowed(f"{call.op.method.upper()} is not allowed on {call.op.path}.")


def ruled(handler: Handler) -> Handler:
    """``handler`` after the operation's rule, evaluated on the caller alone: key-value and
    queue operations have no document (``document.`` operands are missing, so false). Without
    this, ``admit`` only checked that a credential was presented: a rule such as
    ``jwt.isAdmin === true`` on ``PUT /keyv/{key}`` or ``POST /queue/{topic}`` let any valid
    token through."""

    async def checked(call: Call) -> Response:
        require(call, call.endpoint.access, context(call.principal))
        return await handler(call)

    return checked


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
    (Kind.KEYV, "get"): ruled(kv_handlers.kv_get),
    (Kind.KEYV, "put"): ruled(kv_handlers.kv_put),
    (Kind.KEYV, "delete"): ruled(kv_handlers.kv_delete),
    (Kind.KEYV_INCR, "put"): ruled(kv_handlers.kv_incr),
    (Kind.KEYV_DECR, "put"): ruled(kv_handlers.kv_decr),
    (Kind.KEYV_LIST, "get"): ruled(kv_handlers.kv_list),
    (Kind.QUEUE, "post"): ruled(queue_handlers.enqueue),
    (Kind.QUEUE_JOB, "get"): ruled(queue_handlers.job_status),
    (Kind.QUEUE, "get"): ruled(queue_handlers.queue_summary),
    (Kind.QUEUE_TOPICS, "get"): ruled(queue_handlers.list_topics),
    (Kind.QUEUE_RETRY, "post"): ruled(queue_handlers.retry_job),
}
"""Every generic handler by operation kind and method."""


def handler_for(kind: Kind, method: str) -> Handler:
    """The generic handler of an operation kind and method."""
    return HANDLERS.get((kind, method), not_allowed)
