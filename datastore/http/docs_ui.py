"""Interactive API docs: ``GET /ui`` (Swagger UI) over the effective ``/openapi.json``.

The Swagger UI assets come from the ``swagger-ui-bundle`` package and are served at
``/__ui/<file>``; each space's page (``/ui`` or ``/<space>/ui``) points at its own document.
"""

from __future__ import annotations

import html
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from datastore.errors import NotFound
from datastore.http.dispatch import MountedSpace, SpaceRoute

ASSETS = frozenset(
    {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "favicon-32x32.png",
    }
)
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
    window.ui = SwaggerUIBundle({{url: "{spec}", dom_id: "#ui", deepLinking: true}});
  </script>
</body>
</html>
"""


def _bundle_dir() -> Path:
    import swagger_ui_bundle  # type: ignore[import-untyped]

    return Path(swagger_ui_bundle.swagger_ui_path)


async def asset(request: Request) -> Response:
    """``GET /__ui/<file>``: one of the Swagger UI files (long-lived cache)."""
    name = request.url.path.rsplit("/", 1)[-1]
    if name not in ASSETS:
        raise NotFound()
    return FileResponse(
        _bundle_dir() / name, headers={"Cache-Control": "public, max-age=86400, immutable"}
    )


def page_route(titles: dict[str, str]) -> SpaceRoute:
    """The ``/ui`` page of each space."""

    async def page(request: Request, mount: MountedSpace) -> Response:
        title = html.escape(titles.get(mount.base_path, "Datastore"))
        spec = html.escape(mount.base_path + "/openapi.json")
        return HTMLResponse(PAGE.format(title=title, spec=spec))

    return page
