"""Interactive API docs: ``GET /ui`` (Swagger UI 5) over each space's ``/openapi.json``.

Swagger UI 5 renders OpenAPI 3.0 and 3.1. Its files are vendored from the npm package
``swagger-ui-dist`` under ``datastore/http/swagger_ui/`` (see the README there: the PyPI
``swagger-ui-bundle`` stops at Swagger UI 4, which cannot render 3.1) and served at
``/__ui/<file>``; nothing is loaded from a CDN, and the online validator badge is off.
"""

from __future__ import annotations

import html
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from datastore.errors import NotFound
from datastore.http.dispatch import MountedSpace, SpaceRoute

ASSET_DIR = Path(__file__).resolve().parent / "swagger_ui"
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} — API</title>
  <link rel="stylesheet" href="/__ui/swagger-ui.css">
  <link rel="icon" href="/__ui/favicon-32x32.png">
</head>
<body>
  <div id="ui"></div>
  <script src="/__ui/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "{spec}", dom_id: "#ui", deepLinking: true, validatorUrl: null
    }});
  </script>
</body>
</html>
"""


async def asset(request: Request) -> Response:
    """``GET /__ui/<file>``: one of the Swagger UI files (long-lived cache)."""
    name = request.url.path.rsplit("/", 1)[-1]
    if name not in ASSETS:
        raise NotFound()
    return FileResponse(
        ASSET_DIR / name, headers={"Cache-Control": "public, max-age=86400, immutable"}
    )


def page_route(titles: dict[str, str]) -> SpaceRoute:
    """The ``/ui`` page of each space."""

    async def page(request: Request, mount: MountedSpace) -> Response:
        title = html.escape(titles.get(mount.base_path, "Datastore"))
        spec = html.escape(mount.base_path + "/openapi.json")
        return HTMLResponse(PAGE.format(title=title, spec=spec))

    return page
