"""The datastore's error family.

Every error the service answers with is raised as one of these where it is detected and
rendered in one place (``datastore.http.problems``) as ``application/problem+json``.
This module imports nothing from HTTP or the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class InvalidParam:
    """One problem with one named part of a request: ``name`` is a property path, ``reason``
    a plain-language sentence."""

    name: str
    reason: str

    def as_json(self) -> dict[str, str]:
        """The ``invalid-params`` entry for this problem."""
        return {"name": self.name, "reason": self.reason}


class DatastoreError(Exception):
    """Base of every error the datastore answers with.

    ``status`` is the HTTP status code, ``title`` the problem title (fixed per type unless
    given), ``detail`` an optional sentence, ``invalid_params`` the per-field problems.
    """

    status: int = 500
    title: str = "Internal Server Error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        title: str | None = None,
        invalid_params: list[InvalidParam] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title or self.title)
        self.detail = detail
        if title is not None:
            self.title = title
        self.invalid_params = list(invalid_params or [])
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def problem(self) -> dict[str, Any]:
        """The problem+json body for this error (status as a string, as Squiz does)."""
        body: dict[str, Any] = {"title": self.title, "status": str(self.status)}
        if self.detail:
            body["detail"] = self.detail
        if self.invalid_params:
            body["invalid-params"] = [p.as_json() for p in self.invalid_params]
        body.update(self.extra)
        return body


class BadRequest(DatastoreError):
    """A request that cannot be understood (malformed JSON, bad query, bad header)."""

    status = 400
    title = "Bad Request"


class ValidationFailed(BadRequest):
    """A body that does not satisfy the operation's JSON Schema; lists every problem."""

    title = "JSON does not validate."


class Unauthorized(DatastoreError):
    """No valid credential for an operation that needs one."""

    status = 401
    title = "Unauthorized"


class Forbidden(DatastoreError):
    """A valid credential that the access rule refuses."""

    status = 403
    title = "Forbidden"


class DocumentNotFound(DatastoreError):
    """The document does not exist (or the caller may not know that it does)."""

    status = 404
    title = "Document not found"


class CollectionNotFound(DatastoreError):
    """No collection at this path (or its parent document does not exist)."""

    status = 404
    title = "Collection not found"


class NotFound(DatastoreError):
    """Some other resource is missing (a key, a job)."""

    status = 404
    title = "Not Found"


class MethodNotAllowed(DatastoreError):
    """The blueprint declares the path but not this method."""

    status = 405
    title = "Method Not Allowed"


class NotAcceptable(DatastoreError):
    """The client accepts no media type the datastore can answer with."""

    status = 406
    title = "Not Acceptable"


class Conflict(DatastoreError):
    """The request conflicts with the stored state (duplicate id, extended document...)."""

    status = 409
    title = "Conflict"


class Gone(DatastoreError):
    """A change-feed cursor older than the retained log (or not from this log): the client
    reads the collection again and follows from a fresh cursor."""

    status = 410
    title = "Cursor expired"


class PreconditionFailed(DatastoreError):
    """``If-Match`` / ``If-None-Match`` did not hold."""

    status = 412
    title = "Precondition Failed"


class PayloadTooLarge(DatastoreError):
    """The body is larger than the configured limit."""

    status = 413
    title = "Payload Too Large"


class UnsupportedMediaType(DatastoreError):
    """The body is not JSON (by its Content-Type)."""

    status = 415
    title = "Unsupported Media Type"


class ServiceUnavailable(DatastoreError):
    """The database cannot be reached or timed out; the client may retry."""

    status = 503
    title = "Service Unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class InternalError(DatastoreError):
    """An unexpected failure; rendered without internals."""

    status = 500
    title = "Internal Server Error"
