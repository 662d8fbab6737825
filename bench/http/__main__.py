"""HTTP load benchmark: the datastore against Kinto (the peer) and a bare Starlette + psycopg
app (the floor), all on the same PostgreSQL, under gunicorn, loaded by wrk from 127.0.0.1.

    python -m bench.http                     # every scenario, 2 workers, 64 connections
    python -m bench.http --documents 100000 --seconds 5 --rounds 1   # a quick look
    python -m bench.http --scale --write-docs                        # + scaling, into docs/
    python -m bench.http --targets datastore,pgbouncer --scenarios get,list-eq,page-1

Targets: datastore, kinto, floor, pgbouncer (the datastore again, through a PgBouncer in
transaction mode that the benchmark starts, with ``database_pooler = transaction``) and
replica (the datastore again, its GET reads from a streaming hot standby). With the replica
target every target runs on a primary and standby the benchmark starts (``bench/replication.py``:
initdb, pg_basebackup -R) instead of ``--postgres``:

    python -m bench.http --targets datastore,pgbouncer,replica --scenarios get,list-eq,page-1

Scenarios: get (one document by id, public rule), get-jwt (with a JWT and a document rule),
post (a 1 KB document validated against a 10-property schema), patch-inc (PATCH $inc),
list-eq (indexed equality filter, limit 20, over --documents), page-500 and page-1 (cursor
pages of a sorted listing). Targets run alternately within each round, so the ratios compare
numbers taken minutes apart on the same machine; each figure is the median over the rounds.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from bench import pgbouncer, replication
from bench.common import ADMIN, fresh_database, number_all_pending
from bench.http import ours, report, startup
from bench.http.floor_target import Floor
from bench.http.kinto import Kinto
from bench.http.servers import PeakMemory, Server
from bench.http.wrk import Load, Result, find_or_install, run

SCENARIOS = ("get", "get-jwt", "post", "patch-inc", "list-eq", "page-500", "page-1")


class Target(Protocol):
    name: str
    base_url: str
    server: Server

    def loads(self, rng: random.Random) -> dict[str, Load]: ...


def settle(url: str) -> None:
    """Start a run from the same state whichever target ran before: the change log numbered
    and dead rows vacuumed. The floor writes the datastore's table, so its changes reach the
    log unnumbered; without this the datastore's next run numbered them (about 16 µs each,
    2 ms per run of the sequencer on a log no VACUUM has cleaned). This machine runs
    PostgreSQL with autovacuum off, so without the VACUUM every write scenario would also slow
    down every later one, whichever target it measured."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            number_all_pending(conn)
            conn.exec_driver_sql("VACUUM documents, changes")
    finally:
        engine.dispose()


def measure(
    wrk: str, target: Target, load: Load, args: argparse.Namespace, url: str
) -> tuple[Result, float]:
    """A short warm-up, then the measured run; the result and the peak RSS of one worker."""
    settle(url)
    run(wrk, target.base_url, load, seconds=2, connections=args.connections)
    with PeakMemory(target.server) as memory:
        result = run(wrk, target.base_url, load, seconds=args.seconds, connections=args.connections)
    return result, memory.per_worker


def median_result(results: list[Result]) -> Result:
    ordered = sorted(results, key=lambda r: r.rps)
    return ordered[len(ordered) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.http",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10, help="length of each measured run")
    parser.add_argument("--rounds", type=int, default=2, help="runs per scenario and target")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of every target")
    parser.add_argument("--targets", default="datastore,kinto,floor")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--scale", action="store_true", help="also 1/2/4 workers, 10k/100k lists")
    parser.add_argument("--postgres", default=ADMIN, help="SQLAlchemy URL of an admin database")
    parser.add_argument("--work-dir", type=Path, help="keep logs (and Kinto's venv) here")
    parser.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    if args.documents < 20 * 500 + 20:
        parser.error("--documents must be at least 10,020: scenario page-500 reads page 500")
    wrk = find_or_install()
    rng = random.Random(7)
    names = args.targets.split(",")
    scenarios = args.scenarios.split(",")

    with ExitStack() as stack:
        work = args.work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        pair = None
        if "replica" in names:
            pair = stack.enter_context(
                replication.replicated_pair(max_connections=300, shared_buffers="256MB")
            )
            args.postgres = pair.primary_url
        url = stack.enter_context(fresh_database(args.postgres, "bench_http"))
        began = time.perf_counter()
        ours.seed(url, args.documents)
        print(f"seeded {args.documents:,} documents in {time.perf_counter() - began:.0f} s")
        if pair is not None:
            pair.wait_caught_up()
        targets: list[Any] = []
        if "datastore" in names:
            targets.append(ours.Ours(url, work, args.workers, args.documents))
        if "kinto" in names:
            kinto_url = stack.enter_context(fresh_database(args.postgres, "bench_kinto"))
            targets.append(
                Kinto(kinto_url, work, args.workers, args.documents, work / "kinto-venv")
            )
        if "floor" in names:
            targets.append(Floor(url, work, args.workers, args.documents))
        if "pgbouncer" in names:
            port = stack.enter_context(pgbouncer.pgbouncer(url))
            targets.append(
                ours.Ours(
                    pgbouncer.pooled_url(url, port),
                    work,
                    args.workers,
                    args.documents,
                    name="pgbouncer",
                    pooler="transaction",
                )
            )
        if pair is not None:
            replica_url = str(sa.make_url(url).set(port=pair.replica_port).render_as_string(False))
            targets.append(
                ours.Ours(
                    url,
                    work,
                    args.workers,
                    args.documents,
                    name="replica",
                    read_database=replica_url,
                )
            )
        for target in targets:
            target.server.start()
            stack.callback(target.server.stop)
            if isinstance(target, Kinto):
                target.prepare()
        loads = {target.name: target.loads(rng) for target in targets}

        table: dict[str, dict[str, list[tuple[Result, float]]]] = {}
        for scenario in scenarios:
            for _ in range(args.rounds):
                for target in targets:
                    load = loads[target.name].get(scenario)
                    if load is None:
                        continue
                    outcome = measure(wrk, target, load, args, url)
                    table.setdefault(scenario, {}).setdefault(target.name, []).append(outcome)
                    result = outcome[0]
                    print(
                        f"{scenario:10} {target.name:9} {result.rps:8.0f} req/s"
                        f"  p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms"
                        f"  errors {result.error_kinds or 0}  rss {outcome[1]:.0f} MB",
                        flush=True,
                    )
        medians = {
            scenario: {
                name: (
                    median_result([r for r, _ in outcomes]),
                    max(m for _, m in outcomes),
                )
                for name, outcomes in per_target.items()
            }
            for scenario, per_target in table.items()
        }
        extra: dict[str, Any] = {
            "latency": unloaded_latency(wrk, targets, loads, scenarios, args),
        }
        for target in targets:  # their connections would crowd PostgreSQL's 100
            target.server.stop()
        extra["startup"] = startup.measure(args.postgres, work)
        if args.scale and targets and targets[0].name == "datastore":
            extra["scale"] = scaling(wrk, url, work, args, rng)
        text = report.render(medians, extra, args)
        print(text)
        if args.write_docs:
            report.write_docs(text)


def unloaded_latency(
    wrk: str,
    targets: list[Any],
    loads: dict[str, dict[str, Load]],
    scenarios: list[str],
    args: argparse.Namespace,
) -> dict[str, dict[str, Result]]:
    """The listing scenarios with one connection: latency without queueing (at 64 connections
    a closed loop's p99 is mostly time spent waiting behind the other 63)."""
    out: dict[str, dict[str, Result]] = {}
    for scenario in ("list-eq", "page-500", "page-1"):
        if scenario not in scenarios:
            continue
        for target in targets:
            load = loads[target.name].get(scenario)
            if load is not None and target.name in ("datastore", "floor", "pgbouncer", "replica"):
                result = run(
                    wrk, target.base_url, load, seconds=args.seconds, connections=1, threads=1
                )
                out.setdefault(scenario, {})[target.name] = result
    return out


def scaling(
    wrk: str, url: str, work: Path, args: argparse.Namespace, rng: random.Random
) -> dict[str, Any]:
    """Requests/s of scenario get with 1, 2 and 4 workers; list-eq p50/p99 by collection size."""
    throughput: dict[int, Result] = {}
    lists: dict[str, Result] = {}
    for workers in (1, 2, 4):
        target = ours.Ours(url, work, workers, args.documents)
        target.server.start()
        try:
            loads = target.loads(rng)
            throughput[workers] = median_result(
                [measure(wrk, target, loads["get"], args, url)[0] for _ in range(args.rounds)]
            )
            if workers == args.workers:
                for key, size in (("list-eq-10k", 10_000), ("list-eq-100k", 100_000)):
                    lists[f"{size:,}"] = measure(wrk, target, loads[key], args, url)[0]
                lists[f"{args.documents:,}"] = measure(wrk, target, loads["list-eq"], args, url)[0]
        finally:
            target.server.stop()
        print(f"scale: {workers} workers {throughput[workers].rps:.0f} req/s", flush=True)
    return {"workers": throughput, "lists": lists}


if __name__ == "__main__":
    main()
