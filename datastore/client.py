"""A Python client of the datastore's HTTP API (sync, over httpx).

    from datastore.client import Client

    db = Client("http://127.0.0.1:8080", token=JWT)          # or api_key="dsk_..."
    events = db.collection("events")
    event = events.add({"name": "Gig", "eventDate": "2026-12-01T20:00:00Z"})
    events.doc(event["id"]).update({"cost": 5})
    for doc in events.all(filters="document.cost>=5", sort="-document.cost", page_size=50):
        ...
    db.collection("users").doc("u1").collection("notes").get()
    db.kv.incr("hits")
    db.queue("emails").enqueue({"to": "a@example.com"})
    feed = events.changes(wait=25)                  # live changes, resumable from feed.cursor
    for change in feed:                             # {"id", "event", "data"}
        ...

Errors are raised as ``DatastoreHTTPError`` subclasses mirroring the problem types, carrying
``status``, ``title``, ``detail`` and ``invalid_params``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx


class DatastoreHTTPError(Exception):
    """A problem+json answer: ``status``, ``title``, ``detail``, ``invalid_params``."""

    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        self.status = status
        self.title = str(body.get("title", ""))
        self.detail = body.get("detail")
        self.invalid_params: list[dict[str, str]] = list(body.get("invalid-params", []))
        self.body = dict(body)
        super().__init__(f"{status} {self.title}" + (f": {self.detail}" if self.detail else ""))


class BadRequest(DatastoreHTTPError):
    """400: the request (or the document) is not valid; see ``invalid_params``."""


class Unauthorized(DatastoreHTTPError):
    """401: no valid credential."""


class Forbidden(DatastoreHTTPError):
    """403: the access rule refused."""


class NotFound(DatastoreHTTPError):
    """404: no such document, collection, key or job."""


class MethodNotAllowed(DatastoreHTTPError):
    """405: the blueprint does not declare this operation."""


class Conflict(DatastoreHTTPError):
    """409: the id is taken, the document is extended, or a value is not a number."""


class PreconditionFailed(DatastoreHTTPError):
    """412: ``If-Match`` / ``If-None-Match`` did not hold."""


class PayloadTooLarge(DatastoreHTTPError):
    """413: the body is larger than the server accepts."""


class Gone(DatastoreHTTPError):
    """410: a change cursor older than the retained log; read the collection again."""


class ServiceUnavailable(DatastoreHTTPError):
    """503: the database is unavailable; retry later."""


_ERRORS: dict[int, type[DatastoreHTTPError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    410: Gone,
    412: PreconditionFailed,
    413: PayloadTooLarge,
    503: ServiceUnavailable,
}


CONSISTENCY = "X-Datastore-Consistency"
"""The read-your-writes token header (``docs/deploy.md``, read replicas)."""


class Client:
    """A connection to one datastore (or one space of it: include ``/<space>`` in the URL)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        headers: dict[str, str] = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if api_key:
            headers["x-apikey"] = api_key
        # With ``http`` given (an httpx.Client, e.g. a test client), ``url`` is a path prefix.
        self.http = http or httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        self.prefix = url.rstrip("/") if http is not None else ""
        self.http.headers.update(headers)
        self.kv = KeyValue(self)
        self.consistency: str | None = None
        """The last write's ``X-Datastore-Consistency`` (a read replica's read-your-writes
        token), sent with every later request."""

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        has_body: bool = False,
        headers: Mapping[str, str] | None = None,
        prefixed: bool = True,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send a request; raises the DatastoreHTTPError subclass of a problem answer.
        ``prefixed=False`` for server-made paths (paging links already hold any space)."""
        sent = {**(headers or {})}
        if self.consistency:
            sent[CONSISTENCY] = self.consistency
        kwargs: dict[str, Any] = {"params": params or None, "headers": sent or None}
        if has_body:
            kwargs["content"] = json.dumps(json_body).encode()
            kwargs["headers"] = {"Content-Type": "application/json", **sent}
        target = self.prefix + path if prefixed else path
        if timeout is not None:
            kwargs["timeout"] = timeout
        response = self.http.request(method, target, **kwargs)
        self.consistency = response.headers.get(CONSISTENCY, self.consistency)
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"title": response.reason_phrase, "detail": response.text[:200]}
            raise _ERRORS.get(response.status_code, DatastoreHTTPError)(
                response.status_code, body if isinstance(body, dict) else {}
            )
        return response

    def collection(self, name: str) -> Collection:
        """A collection by name (``events``) or path (``users/u1/events``)."""
        return Collection(self, "/" + name.strip("/"))

    def queue(self, topic: str) -> Queue:
        """A job queue topic."""
        return Queue(self, topic)


def _json(response: httpx.Response) -> Any:
    return response.json() if response.content else None


class Collection:
    """A collection: list, query, count, add, by-query updates; ``doc(id)`` for one."""

    def __init__(self, client: Client, path: str) -> None:
        self.client = client
        self.path = path

    def doc(self, doc_id: str) -> Doc:
        """One document of the collection."""
        return Doc(self.client, f"{self.path}/{quote(doc_id, safe='')}")

    def get(self, **params: Any) -> list[dict[str, Any]]:
        """Documents (``limit``, ``offset``, ``sort``, ``filters``, ``fields``, conditions...)."""
        result = _json(self.client.request("GET", self.path, params=_params(params)))
        return list(result)

    def query(
        self, q: Mapping[str, Any], hints: Mapping[str, Any] | None = None, **params: Any
    ) -> list[dict[str, Any]]:
        """The Codehooks dialect: a Mongo-style query and optional hints."""
        params = {**params, "q": json.dumps(q)}
        if hints:
            params["h"] = json.dumps(hints)
        return self.get(**params)

    def page(self, size: int, **params: Any) -> Page:
        """The first page of ``size`` documents (cursor paging)."""
        params = {**_params(params), "page[size]": size, "page[v]": 2}
        body = _json(self.client.request("GET", self.path, params=params))
        return Page(self.client, body)

    def all(self, page_size: int = 100, **params: Any) -> Iterator[dict[str, Any]]:
        """Every matching document, following the cursor pages to the end."""
        page: Page | None = self.page(page_size, **params)
        while page is not None:
            yield from page.data
            page = page.next()

    def add(self, body: Mapping[str, Any]) -> Any:
        """POST a new document; the created document (when the operation returns one)."""
        return _json(self.client.request("POST", self.path, json_body=body, has_body=True))

    def count(self, q: Mapping[str, Any] | None = None) -> int:
        """``_count``: how many documents match ``q``."""
        params = {"q": json.dumps(q)} if q is not None else None
        return int(_json(self.client.request("GET", f"{self.path}/_count", params=params))["count"])

    def update_by_query(self, q: Mapping[str, Any], update: Mapping[str, Any]) -> int:
        """``PATCH _byquery``: apply an update to every match; the count."""
        response = self.client.request(
            "PATCH",
            f"{self.path}/_byquery",
            params={"q": json.dumps(q)},
            json_body=update,
            has_body=True,
        )
        return int(_json(response)["count"])

    def changes(
        self,
        since: str | None = None,
        *,
        wait: float = 25,
        follow: bool = True,
        q: Mapping[str, Any] | None = None,
        filters: str | None = None,
        limit: int | None = None,
    ) -> Changes:
        """The collection's changes the caller may read, after the cursor ``since`` (from
        now without one), by long polling ``_changes`` (``wait`` seconds per request; at most
        the server's ``--changes-max-wait``). ``follow=False`` stops once caught up. The
        iterator's ``cursor`` is where to resume; a cursor the log no longer keeps raises
        ``Gone``."""
        params: dict[str, Any] = {"wait": int(wait)}
        if q is not None:
            params["q"] = json.dumps(q)
        if filters is not None:
            params["filters"] = filters
        if limit is not None:
            params["limit"] = limit
        return Changes(self, params, since, follow=follow)

    def delete_by_query(self, q: Mapping[str, Any]) -> int:
        """``DELETE _byquery``: delete every match (``{}`` for all); the count."""
        response = self.client.request(
            "DELETE", f"{self.path}/_byquery", params={"q": json.dumps(q)}
        )
        return int(_json(response)["count"])


class Changes:
    """An iterator of change events (``{"id", "event", "data"}``); ``cursor`` is the position
    after the last one yielded (or after the last empty page)."""

    def __init__(
        self,
        collection: Collection,
        params: dict[str, Any],
        since: str | None,
        *,
        follow: bool,
    ) -> None:
        self.collection = collection
        self.params = params
        self.cursor = since
        self.follow = follow
        self._pending: list[dict[str, Any]] = []
        self._next: str | None = None
        self._done = False

    def __iter__(self) -> Changes:
        return self

    def __next__(self) -> dict[str, Any]:
        while not self._pending:
            if self._done:
                raise StopIteration
            self._fetch()
        change = self._pending.pop(0)
        if not self._pending and self._next is not None:
            self.cursor = self._next
        else:
            self.cursor = str(change["id"])
        return change

    def _fetch(self) -> None:
        params = dict(self.params)
        if self.cursor is not None:
            params["since"] = self.cursor
        else:
            params["wait"] = 0  # the first request only learns where "now" is
        wait = float(params["wait"])
        client = self.collection.client
        response = client.request(
            "GET",
            f"{self.collection.path}/_changes",
            params=params,
            timeout=wait + 30 if wait > 0 else None,  # past the client's, for a long poll
        )
        body = _json(response)
        self._pending = list(body["changes"])
        self._next = str(body["next"])
        if not self._pending:
            self.cursor = self._next
            self._done = not self.follow and self.cursor is not None and "since" in params


class Page:
    """One page of a cursor-paged listing."""

    def __init__(self, client: Client, body: Mapping[str, Any]) -> None:
        self.client = client
        self.data: list[dict[str, Any]] = list(body.get("data", []))
        self.links: dict[str, str | None] = dict(body.get("links", {}))

    def has_next(self) -> bool:
        """Whether a next page exists."""
        return bool(self.links.get("next"))

    def has_prev(self) -> bool:
        """Whether a previous page exists."""
        return bool(self.links.get("prev"))

    def _follow(self, link: str | None) -> Page | None:
        if not link:
            return None
        return Page(self.client, _json(self.client.request("GET", link, prefixed=False)))

    def next(self) -> Page | None:
        """The next page, or None."""
        return self._follow(self.links.get("next"))

    def prev(self) -> Page | None:
        """The previous page, or None."""
        return self._follow(self.links.get("prev"))


class Doc:
    """One document: get, set (PUT), update (PATCH), delete; sub-collections."""

    def __init__(self, client: Client, path: str) -> None:
        self.client = client
        self.path = path
        self.etag: str | None = None

    def collection(self, name: str) -> Collection:
        """A sub-collection of this document."""
        return Collection(self.client, f"{self.path}/{name.strip('/')}")

    def _remember(self, response: httpx.Response) -> Any:
        self.etag = response.headers.get("etag", self.etag)
        return _json(response)

    def get(self) -> Any:
        """The document (remembers its ETag)."""
        return self._remember(self.client.request("GET", self.path))

    def set(
        self, body: Mapping[str, Any], *, if_match: str | None = None, create_only: bool = False
    ) -> Any:
        """PUT: create with this id or replace (``create_only``: If-None-Match: *)."""
        headers = {}
        if if_match:
            headers["If-Match"] = if_match
        if create_only:
            headers["If-None-Match"] = "*"
        return self._remember(
            self.client.request("PUT", self.path, json_body=body, has_body=True, headers=headers)
        )

    def update(self, body: Mapping[str, Any], *, if_match: str | None = None) -> Any:
        """PATCH: fields, or update operators (``{"$inc": {"n": 1}}``)."""
        headers = {"If-Match": if_match} if if_match else None
        return self._remember(
            self.client.request("PATCH", self.path, json_body=body, has_body=True, headers=headers)
        )

    def delete(self, *, detach: bool = False, if_match: str | None = None) -> None:
        """DELETE (``detach``: clear the extends of documents extending this one)."""
        headers = {"If-Match": if_match} if if_match else None
        params = {"detach": "true"} if detach else None
        self.client.request("DELETE", self.path, params=params, headers=headers)


class KeyValue:
    """The key-value store (``/keyv``)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def _path(self, key: str, suffix: str = "") -> str:
        return f"/keyv/{quote(key, safe='')}{suffix}"

    def get(self, key: str, *, keyspace: str | None = None) -> Any:
        """The value; raises NotFound when missing or expired."""
        params = {"keyspace": keyspace} if keyspace else None
        return _json(self.client.request("GET", self._path(key), params=params))

    def set(
        self, key: str, value: Any, *, ttl_ms: int | None = None, keyspace: str | None = None
    ) -> None:
        """Store a value, expiring after ``ttl_ms`` milliseconds when given."""
        params: dict[str, Any] = {}
        if ttl_ms is not None:
            params["ttl"] = ttl_ms
        if keyspace:
            params["keyspace"] = keyspace
        self.client.request("PUT", self._path(key), params=params, json_body=value, has_body=True)

    def delete(self, key: str, *, keyspace: str | None = None) -> None:
        """Delete a key; raises NotFound when missing."""
        params = {"keyspace": keyspace} if keyspace else None
        self.client.request("DELETE", self._path(key), params=params)

    def incr(self, key: str, by: int | float = 1, *, keyspace: str | None = None) -> Any:
        """Add ``by`` atomically; the new value."""
        params = {"keyspace": keyspace} if keyspace else None
        response = self.client.request(
            "PUT", self._path(key, "/_incr"), params=params, json_body={"value": by}, has_body=True
        )
        return _json(response)["value"]

    def decr(self, key: str, by: int | float = 1, *, keyspace: str | None = None) -> Any:
        """Subtract ``by`` atomically; the new value."""
        params = {"keyspace": keyspace} if keyspace else None
        response = self.client.request(
            "PUT", self._path(key, "/_decr"), params=params, json_body={"value": by}, has_body=True
        )
        return _json(response)["value"]

    def list(self, prefix: str = "", *, limit: int | None = None) -> list[dict[str, Any]]:
        """Live keys starting with ``prefix``, with their values."""
        params: dict[str, Any] = {"prefix": prefix}
        if limit is not None:
            params["limit"] = limit
        return list(_json(self.client.request("GET", "/keyv", params=params)))


class Queue:
    """A job queue topic."""

    def __init__(self, client: Client, topic: str) -> None:
        self.client = client
        self.topic = topic

    def enqueue(self, payload: Any) -> str:
        """Store a job; its id."""
        response = self.client.request(
            "POST", f"/queue/{quote(self.topic, safe='')}", json_body=payload, has_body=True
        )
        return str(_json(response)["_id"])

    def status(self, job_id: str) -> dict[str, Any]:
        """A job's status, attempts and last error."""
        path = f"/queue/{quote(self.topic, safe='')}/{quote(job_id, safe='')}"
        return dict(_json(self.client.request("GET", path)))


def _params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}
