"""``GET /__sdk/datastore.js``: the browser SDK, an ES module shipped as package data, with
its version in the header and long-lived caching (the ETag changes with the version)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from datastore import __version__

SOURCE = Path(__file__).resolve().parent.parent / "sdk" / "datastore.js"


def sdk_route() -> Callable[[Request], Awaitable[Response]]:
    """The route serving the SDK (read once)."""
    body = SOURCE.read_text(encoding="utf-8").replace("__VERSION__", __version__).encode()
    etag = f'"sdk-{__version__}"'

    async def sdk(request: Request) -> Response:
        headers = {
            "Cache-Control": "public, max-age=86400",
            "ETag": etag,
            "X-Datastore-SDK-Version": __version__,
        }
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="text/javascript", headers=headers)

    return sdk
