"""Routing cost on a large blueprint: a request to the first, middle and last of 50 collections.

    python -m bench.routing [--collections 50] [--requests 2000]

connexion adds one Starlette route per path and method and tries them in order; the datastore
indexes them by first segment (``http/segment_routes.py``). This serves the 50-collection
blueprint of ``bench/http/startup.py`` in process (SQLite, the app's lifespan, httpx's ASGI
transport) twice, with the index and with connexion's own routing, and prints the wall-clock
p10 / p50 of ``GET /c<n>/<missing id>`` (a 404 after routing, validation and one read) for
each collection, and last/first: flat with the index, growing with the route count without.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import httpx

from bench.http.startup import blueprint


async def _timings(collections: int, requests: int, names: list[str]) -> dict[str, list[float]]:
    from asgi_lifespan import LifespanManager

    from datastore.asgi import application

    app = application()
    found: dict[str, list[float]] = {name: [] for name in names}
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for name in names:  # warm-up
                for n in range(100):
                    await client.get(f"/{name}/missing-{n}")
            for n in range(requests):
                for name in names:
                    began = time.perf_counter()
                    answer = await client.get(f"/{name}/missing-{n}")
                    found[name].append(time.perf_counter() - began)
                    assert answer.status_code == 404, answer.text
    return found


def _run(collections: int, requests: int, indexed: bool) -> dict[str, list[float]]:
    from connexion.middleware.routing import RoutingMiddleware

    import datastore.app as app_module
    from datastore.http.segment_routes import SegmentRoutingMiddleware

    chosen = SegmentRoutingMiddleware if indexed else RoutingMiddleware
    app_module.CONNEXION_MIDDLEWARES[:] = [
        chosen if issubclass(m, RoutingMiddleware) else m for m in app_module.CONNEXION_MIDDLEWARES
    ]
    names = [f"c{n}" for n in (0, collections // 2, collections - 1)]
    return asyncio.run(_timings(collections, requests, names))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.routing", description=__doc__)
    parser.add_argument("--collections", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-routing-"))
    document = work / "blueprint.json"
    document.write_text(json.dumps(blueprint(args.collections)))
    os.environ.update(
        {
            "DATASTORE_BLUEPRINT": str(document),
            "DATASTORE_DATABASE_URL": f"sqlite:///{work / 'db.sqlite'}",
            "DATASTORE_LOG_LEVEL": "warning",
        }
    )
    print(f"{args.collections} collections, {args.requests} requests per collection, in process")
    for label, indexed in (("indexed by first segment", True), ("connexion's scan", False)):
        timings = _run(args.collections, args.requests, indexed)
        p50s = []
        for name, walls in timings.items():
            walls.sort()
            p10, p50 = walls[len(walls) // 10], walls[len(walls) // 2]
            p50s.append(p50)
            print(f"  {label:25s} GET /{name}/x  p10 {p10 * 1e6:5.0f} µs  p50 {p50 * 1e6:5.0f} µs")
        print(f"  {label:25s} last / first (p50): {p50s[-1] / p50s[0]:.2f}x")


if __name__ == "__main__":
    main()
