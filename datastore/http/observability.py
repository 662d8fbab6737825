"""Request ids, JSON access logs and Prometheus metrics, around the whole app.

Every response carries ``X-Request-Id`` (the client's, when it sent a sane one, else a new
one), and one JSON line per request goes to the ``datastore.access`` logger: time, request id,
method, path, status, latency, space and operation. Metrics (``GET /__metrics``, Prometheus text
format) count requests by operation and status, time them, and report the database pool and the
queue depth. Metrics are per process: behind gunicorn, scrape each worker or aggregate upstream.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datastore.storage.engine import Database
from datastore.storage.status import figures

access_log = logging.getLogger("datastore.access")
OBSERVED = "datastore.observed"
"""Scope key of a per-request dict the dispatcher writes the operation and space into (a
shared object survives the scope copies middleware makes)."""
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


class Metrics:
    """The Prometheus collectors of one app."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "datastore_requests_total",
            "HTTP requests by operation and status",
            ["operation", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "datastore_request_duration_seconds",
            "Request latency by operation",
            ["operation"],
            registry=self.registry,
        )
        self.pool = Gauge(
            "datastore_db_connections_in_use",
            "Database connections checked out of the pool",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "datastore_queue_jobs",
            "Jobs by space, topic and status",
            ["space", "topic", "status"],
            registry=self.registry,
        )
        self._counters: dict[tuple[str, int], Any] = {}
        self._timers: dict[str, Any] = {}

    def observe(self, operation: str, status: int, seconds: float) -> None:
        """Record one request. The labelled children are kept by label: looking them up in
        the collector (``labels()``: checks, a lock) cost more than counting."""
        counter = self._counters.get((operation, status))
        if counter is None:
            counter = self._counters[operation, status] = self.requests.labels(
                operation, str(status)
            )
        timer = self._timers.get(operation)
        if timer is None:
            timer = self._timers[operation] = self.latency.labels(operation)
        counter.inc()
        timer.observe(seconds)

    async def endpoint(self, request: Request) -> Response:
        """``GET /__metrics``."""
        in_use, depths = await figures(self.db)
        self.pool.set(in_use)
        self.queue_depth.clear()
        for space, topic, status, count in depths:
            self.queue_depth.labels(space, topic, status).set(count)
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def _request_id(scope: Scope) -> str:
    """The client's ``X-Request-Id`` when it is sane, else 32 new random hex digits."""
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id":
            incoming: str = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(incoming):
                return incoming
            break
    return os.urandom(16).hex()


class Observability:
    """ASGI middleware: request ids, access logs, request metrics."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        spaces: Mapping[str, str],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.spaces = spaces  # base path → space name
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self.clock()
        observed: dict[str, str] = {}
        scope[OBSERVED] = observed  # the dispatcher fills in the operation and space
        request_id = _request_id(scope)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0] != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = self.clock() - started
            operation = observed.get("operation", "unrouted")
            space = observed.get("space", "")
            self.metrics.observe(operation, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    orjson.dumps(
                        {
                            "ts": time.time(),
                            "request_id": request_id,
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": status,
                            "ms": round(elapsed * 1000, 3),
                            "space": space,
                            "operation": operation,
                        }
                    ).decode()
                )
