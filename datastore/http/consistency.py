"""Read-your-writes with a read replica (``read_database``).

Every successful write answers with ``X-Datastore-Consistency``: the primary's WAL position
once the write has committed. A GET may send the last such token it was given back in the
same header; its reads then go to the replica only once the replica has replayed that far
(``storage/replica.py`` waits briefly, then reads from the primary). A GET without a token
reads whatever the replica has; one whose token is not a WAL position reads from the primary.
Installed by ``app.middleware_stack`` only when a read database is configured.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import Headers, MutableHeaders

from datastore.storage.replica import reading_from_replica

HEADER = "X-Datastore-Consistency"
READS = frozenset({"GET", "HEAD"})
log = logging.getLogger(__name__)


class Consistency:
    """ASGI middleware: GETs may read from the replica; writes hand out their token."""

    def __init__(self, app: Any, position: Callable[[], Awaitable[str]]) -> None:
        self.app = app
        self.position = position

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        if scope["method"] in READS:
            with reading_from_replica(Headers(scope=scope).get(HEADER)):
                await self.app(scope, receive, send)
            return
        await self.app(scope, receive, self._with_token(send))

    def _with_token(self, send: Any) -> Any:
        async def send_with_token(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                try:
                    token = await self.position()
                except Exception:  # noqa: BLE001 - the write is done; only the token is lost
                    log.warning("no consistency token for a write: the primary did not answer")
                else:
                    MutableHeaders(scope=message)[HEADER] = token
            await send(message)

        return send_with_token
