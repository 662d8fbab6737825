"""The app's own CPU per request, in process, one request at a time (PostgreSQL):

    python -m bench.app_cpu                        # 20,000 documents, 2,000 requests each
    PYTHONPATH=/path/to/other/checkout python -m bench.app_cpu   # the same on another commit

Each scenario of ``bench.http`` (GET by id, with a JWT rule, POST, PATCH ``$inc``, the indexed
equality list, cursor pages 1 and 500) goes through the ASGI app with httpx's ASGI transport
and the app's lifespan. Printed per scenario: the process CPU time per request (the app, its
drivers and the transport; PostgreSQL's own work runs in its processes and is not counted) and
the wall-clock p50 / p99 of one connection. The transport alone (a bare Starlette app answering
``{}``) is printed first: subtract it. The floor of ``bench.http`` (a bare Starlette + psycopg
app running the same SQL) runs the same way, so the two CPU figures give the ratio a
CPU-bound server would reach. CPU time hardly moves when other programs load the
machine, where ``bench.http``'s requests per second do: use this to compare two commits on a
busy machine, and ``bench.http`` on a quiet one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from bench.common import fresh_database
from bench.http import data, ours
from bench.http.wrk import Load

Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


def _sender(load: Load) -> Send:
    async def send(client: httpx.AsyncClient, n: int) -> httpx.Response:
        path = load.paths[n % len(load.paths)]
        return await client.request(load.method, path, headers=load.headers, content=load.body)

    return send


async def _measure(
    client: httpx.AsyncClient, send: Send, requests: int
) -> tuple[float, list[float]]:
    for n in range(min(200, requests)):  # warm-up: prepared statements, templates, caches
        response = await send(client, n)
        assert response.status_code < 300, (response.status_code, response.text[:200])
    walls = []
    cpu = time.process_time()
    for n in range(requests):
        began = time.perf_counter()
        await send(client, n)
        walls.append(time.perf_counter() - began)
    return (time.process_time() - cpu) / requests, walls


async def _deep_page(client: httpx.AsyncClient, first: str, page: int) -> str:
    url = first
    for _ in range(page - 1):
        url = (await client.get(url)).json()["links"]["next"]
    return url


def _report(name: str, cpu: float, walls: list[float]) -> None:
    ordered = sorted(walls)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    print(
        f"{name:10s} cpu {cpu * 1e6:7.0f} µs/request   "
        f"p50 {statistics.median(ordered) * 1e3:6.2f} ms   p99 {p99 * 1e3:6.2f} ms"
    )


async def _transport(requests: int) -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def empty(request: Any) -> JSONResponse:
        return JSONResponse({})

    app = Starlette(routes=[Route("/x", empty)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        cpu, walls = await _measure(client, _sender(Load("GET", ["/x"])), requests)
    _report("transport", cpu, walls)


async def _datastore(url: str, requests: int, documents: int, scenarios: list[str]) -> None:
    from asgi_lifespan import LifespanManager

    from datastore.asgi import application
    from datastore.auth.credentials import mint_token

    app = application()
    token = mint_token({"sub": data.JWT_USER}, secret=ours.JWT_SECRET)
    loads = data.shared_loads(random.Random(7), documents, {"Authorization": f"Bearer {token}"})
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            first = "/items?page%5Bsize%5D=20&sort=%2Bdocument.rank"
            loads["page-1"] = Load("GET", [first])
            loads["page-500"] = Load("GET", [await _deep_page(client, first, 500)])
            for name in scenarios:
                cpu, walls = await _measure(client, _sender(loads[name]), requests)
                _report(name, cpu, walls)


async def _floor(url: str, requests: int, documents: int, scenarios: list[str]) -> None:
    """The floor app of ``bench.http`` (bare Starlette + psycopg, the same SQL), in process."""
    import importlib

    from asgi_lifespan import LifespanManager

    from bench.http.floor_target import Floor, equality_expressions

    target = Floor(url, Path(tempfile.mkdtemp(prefix="bench-floor-")), 1, documents)
    os.environ["FLOOR_DATABASE_URL"] = url.replace("postgresql+psycopg://", "postgresql://")
    os.environ["FLOOR_SORT"] = json.dumps(target.sort)
    os.environ["FLOOR_EQUAL"] = json.dumps({"category": equality_expressions("category")})
    floor = importlib.import_module("bench.http.floor")  # its pool reads the environment
    loads = target.loads(random.Random(7))
    async with LifespanManager(floor.app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for name in scenarios:
                if name not in loads:
                    continue
                cpu, walls = await _measure(client, _sender(loads[name]), requests)
                _report(name, cpu, walls)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.app_cpu", description=__doc__)
    parser.add_argument("--documents", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--scenarios", default="get,get-jwt,post,patch-inc,list-eq,page-1,page-500")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--targets", default="datastore,floor")
    args = parser.parse_args()
    asyncio.run(_transport(args.requests))
    with fresh_database(args.postgres, "bench_cpu") as url:
        ours.seed(url, args.documents)
        work = Path(tempfile.mkdtemp(prefix="bench-cpu-"))
        blueprint = work / "blueprint.json"
        blueprint.write_text(json.dumps(ours.BLUEPRINT))
        os.environ.update(
            {
                "DATASTORE_BLUEPRINT": str(blueprint),
                "DATASTORE_DATABASE_URL": url,
                "DATASTORE_MIGRATE": "false",
                "DATASTORE_LOG_LEVEL": "warning",
                "DATASTORE_JWT_SECRET": ours.JWT_SECRET,
            }
        )
        scenarios = args.scenarios.split(",")
        for target in args.targets.split(","):
            print(f"-- {target}")
            run = {"datastore": _datastore, "floor": _floor}[target]
            asyncio.run(run(url, args.requests, args.documents, scenarios))


if __name__ == "__main__":
    main()
