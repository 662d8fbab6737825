"""Live changes on PostgreSQL: 1,000 SSE subscribers on one worker (issue 21's targets).

    python -m bench.changes [--subscribers 1000] [--writes 50] [--seconds 10] [--rounds 3]
    python -m bench.changes --log-cost [--rounds 3] [--seconds 5]
    python -m bench.changes --commits [--rounds 3] [--seconds 5] [--clients 16]
    python -m bench.changes --sequencer [--rounds 3] [--seconds 10]

One uvicorn worker (a subprocess, ``datastore.asgi:application``) serves
``blueprints/multi-user.yaml``; every subscriber has its own token, so each change is checked
against its document GET rule as that subscriber (rules that read only the document are
decided once per change for all of them). It measures:

1. write throughput (POST /posts, 8 concurrent writers) with no subscriber attached;
2. the worker's memory per idle subscriber (RSS growth over N idle streams / N);
3. delivery latency: for each of ``--writes`` writes, spaced apart, the time from sending the
   POST to each subscriber receiving its event (p50 / p99 / max over every pair);
4. write throughput again with the N subscribers attached (each write then fans out to all);
5. ``--rounds`` times over (1 and 4, the subscribers detached in between): the machine's other
   load shifts between rounds, and each round's ratio compares neighbours.

``--log-cost`` measures instead what the change log costs a write with no subscriber: POST
throughput (``WRITERS`` concurrent writers) with the log's trigger enabled and disabled
(``ALTER TABLE documents DISABLE TRIGGER``), alternating, ``--rounds`` rounds of each on the
same server and database.

``--commits`` leaves HTTP out: ``pgbench`` (``--clients`` connections, one single-row INSERT
per transaction into one space) against one database, migrated to 0007 (the log numbered at
commit under the space's row lock, NOTIFY in the writing transaction) and then to 0008 (append
only; a sequencer numbering in a loop beside it, as a worker would), each with the log's
trigger enabled and disabled, alternating: commits per second, which is where 0007 serialised
the space's commits (their WAL flushes included).

``--sequencer`` leaves HTTP out too: on a fresh database migrated to 0008, then to 0009,
``SEQUENCER_WRITERS`` connections commit one document at a time for ``--seconds`` while the
sequencer runs every 50 ms as a worker taking writes does (no VACUUM meanwhile), and it prints
the median run time in each quarter of the time, as the log grows.

The client (subscribers and writers) runs in this process on the same 2-core machine as the
server and PostgreSQL, so every figure is noisy and pessimistic; compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.common import ADMIN, fresh_database, number_all_pending
from datastore.auth.credentials import mint_token

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-changes-secret-0123456789abcdef"
TITLE = re.compile(rb'"title":"(w[0-9]+)"')
WRITERS = 8


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    """One uvicorn worker serving multi-user.yaml on ``port``."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATASTORE_BLUEPRINT": str(ROOT / "blueprints" / "multi-user.yaml"),
        "DATASTORE_DATABASE_URL": url,
        "DATASTORE_JWT_SECRET": SECRET,
        "DATASTORE_LOG_LEVEL": "warning",
    }
    subprocess.run(
        [sys.executable, "-m", "datastore.cli", "migrate"], env=env, check=True, capture_output=True
    )
    profile = os.environ.get("BENCH_PROFILE")  # a file: the server runs under cProfile
    prefix = ["-m", "cProfile", "-o", profile] if profile else []
    server = subprocess.Popen(
        [
            sys.executable,
            *prefix,
            "-m",
            "uvicorn",
            "--factory",
            "datastore.asgi:application",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "5",
        ],
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/__health").status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.kill()
    raise RuntimeError("the server did not start")


def rss_kb(pid: int) -> int:
    """The resident memory of a process, in KB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Subscriber:
    """One SSE connection over a raw socket: when each write's event arrived."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.arrivals: dict[bytes, float] = {}
        self.timing = True
        """Whether to look into what arrives (off while measuring throughput: reading and
        dropping keeps this client's CPU, which shares the machine, out of the way)."""
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        request = (
            "GET /posts/_changes HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n"
            f"Authorization: Bearer {self.token}\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                if not self.timing:
                    continue
                now = time.monotonic()
                if not self.ready.is_set() and b"retry:" in chunk:
                    self.ready.set()
                for title in TITLE.findall(chunk):
                    self.arrivals.setdefault(title, now)
        finally:
            writer.close()


async def write_one(client: httpx.AsyncClient, title: str, token: str) -> float:
    """POST one published post; when it was sent."""
    sent = time.monotonic()
    body = {"ownerId": "writer", "title": title, "published": True}
    response = await client.post("/posts", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text
    return sent


async def throughput(port: int, seconds: float, token: str, prefix: str) -> float:
    """Writes per second of ``WRITERS`` concurrent writers for ``seconds``."""
    done = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=WRITERS)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:

        async def writer(n: int) -> None:
            nonlocal done
            i = 0
            while time.perf_counter() < stop:
                await write_one(client, f"{prefix}{n}x{i}", token)
                done += 1
                i += 1

        start = time.perf_counter()
        await asyncio.gather(*(writer(n) for n in range(WRITERS)))
        return done / (time.perf_counter() - start)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _write_for(args: tuple[int, float, str, str]) -> float:
    port, seconds, token, prefix = args
    return asyncio.run(throughput(port, seconds, token, prefix))


def _spaced_writes(args: tuple[int, int, str]) -> dict[bytes, float]:
    port, writes, token = args

    async def run() -> dict[bytes, float]:
        sent: dict[bytes, float] = {}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for n in range(writes):
                title = f"w{n}"
                sent[title.encode()] = await write_one(client, title, token)
                await asyncio.sleep(0.3)
        return sent

    return asyncio.run(run())


async def in_process(function: Any, *args: Any) -> Any:
    """``function(args)`` in a child process (writers apart from the subscribers' loop)."""
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        return await loop.run_in_executor(pool, function, args)


async def timed_writes(
    port: int, pid: int, seconds: float, token: str, prefix: str
) -> tuple[float, float]:
    """(writes per second, server CPU milliseconds per write) of a writing phase."""
    cpu = cpu_seconds(pid)
    rate = await in_process(_write_for, port, seconds, token, prefix)
    used = cpu_seconds(pid) - cpu
    return rate, used * 1000 / max(rate * seconds, 1)


async def attach(port: int, subscribers: int) -> list[Subscriber]:
    """``subscribers`` open event streams, each with its own token, once all are ready."""
    subs = [
        Subscriber(port, mint_token({"sub": f"s{i}"}, secret=SECRET)) for i in range(subscribers)
    ]
    for index, sub in enumerate(subs):
        sub.task = asyncio.create_task(sub.run())
        if index % 100 == 99:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in subs)), 120)
    return subs


async def latency(
    port: int, subs: list[Subscriber], writes: int, token: str
) -> tuple[list[float], int]:
    """Sorted milliseconds from sending each of ``writes`` spaced POSTs to each subscriber
    receiving it, and how many deliveries never came."""
    latencies: list[float] = []
    sent = await in_process(_spaced_writes, port, writes, token)
    await asyncio.sleep(3)
    missing = 0
    for sub in subs:
        for title, at in sent.items():
            arrived = sub.arrivals.get(title)
            if arrived is None:
                missing += 1
            else:
                latencies.append((arrived - at) * 1000)
    return sorted(latencies), missing


async def measure(
    port: int, pid: int, subscribers: int, writes: int, seconds: float, rounds: int
) -> None:
    """``rounds`` of: writes alone, N subscribers attached, writes with them, detached (the
    first round also measures memory and delivery latency). Alternating keeps the machine's
    other load out of the ratio as far as it can be."""
    writer_token = mint_token({"sub": "writer"}, secret=SECRET)
    await in_process(_write_for, port, 2, writer_token, "warm")
    alone: list[tuple[float, float]] = []
    attached: list[tuple[float, float]] = []
    client_ms: list[float] = []
    for n in range(rounds):
        alone.append(await timed_writes(port, pid, seconds, writer_token, f"a{n}"))
        await asyncio.sleep(1)
        before = rss_kb(pid)
        subs = await attach(port, subscribers)
        await asyncio.sleep(2)
        if n == 0:
            per = (rss_kb(pid) - before) / subscribers
            latencies, missing = await latency(port, subs, writes, writer_token)
        for sub in subs:
            sub.timing = False
        client = sum(os.times()[:2])
        attached.append(await timed_writes(port, pid, seconds, writer_token, f"b{n}"))
        client_ms.append((sum(os.times()[:2]) - client) * 1000 / max(attached[-1][0] * seconds, 1))
        for sub in subs:
            assert sub.task is not None
            sub.task.cancel()
        await asyncio.sleep(2)  # the server notices the closed streams at its next write
        await in_process(_write_for, port, 1, writer_token, f"c{n}")
    p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan")
    print(f"| subscribers | {subscribers} |")
    print(f"| write → every subscriber, p50 | {statistics.median(latencies):.0f} ms |")
    print(f"| write → every subscriber, p99 | {p99:.0f} ms (target < 250 ms) |")
    print(f"| write → every subscriber, max | {latencies[-1]:.0f} ms |")
    print(f"| events missing | {missing} of {subscribers * writes} |")
    print(f"| memory per idle subscriber | {per:.1f} KB (target < 50 KB) |")
    rates = ", ".join(
        f"{a:.0f} → {b:.0f} ({b / a:.0%})" for (a, _), (b, _) in zip(alone, attached, strict=True)
    )
    print(f"| writes/s without → with {subscribers} subscribers, each round | {rates} |")
    alone_rate = statistics.median(a for a, _ in alone)
    with_rate = statistics.median(b for b, _ in attached)
    print(
        f"| writes/s, median | {alone_rate:.0f} → {with_rate:.0f} "
        f"({with_rate / alone_rate:.0%}; target ≥ 85 %) |"
    )
    print(
        f"| server CPU per write, median | {statistics.median(c for _, c in alone):.2f} → "
        f"{statistics.median(c for _, c in attached):.2f} ms (the subscribers' client, on the "
        f"same machine: {statistics.median(client_ms):.2f} ms/write) |"
    )


def _trigger(url: str, enabled: bool) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        verb = "ENABLE" if enabled else "DISABLE"
        conn.exec_driver_sql(f"ALTER TABLE documents {verb} TRIGGER documents_changes")
    engine.dispose()


async def log_cost(url: str, port: int, pid: int, rounds: int, seconds: float) -> None:
    """POST throughput with the change log's trigger enabled and disabled, alternating."""
    token = mint_token({"sub": "writer"}, secret=SECRET)
    await in_process(_write_for, port, 2, token, "warm")
    rates: dict[bool, list[float]] = {True: [], False: []}
    cpus: dict[bool, list[float]] = {True: [], False: []}
    for n in range(rounds):
        for enabled in (True, False) if n % 2 == 0 else (False, True):
            _trigger(url, enabled)
            rate, cpu = await timed_writes(port, pid, seconds, token, f"r{n}{int(enabled)}")
            rates[enabled].append(rate)
            cpus[enabled].append(cpu)
    _trigger(url, True)
    for enabled in (False, True):
        label = "with the log" if enabled else "without the log (trigger disabled)"
        shown = ", ".join(f"{r:.0f}" for r in rates[enabled])
        print(
            f"| POST/s {label} | {statistics.median(rates[enabled]):.0f} (rounds: {shown}; "
            f"server CPU {statistics.median(cpus[enabled]):.2f} ms/write) |"
        )
    ratio = statistics.median(rates[True]) / statistics.median(rates[False])
    print(f"| with / without | {ratio:.2f} |")


PGBENCH_SCRIPT = """\\set n random(1, 2000000000)
INSERT INTO documents (space, collection, doc_id, body, created_at, updated_at, version)
VALUES ('bench', 'c', :n || '-' || :client_id, '{}', now(), now(), 1) ON CONFLICT DO NOTHING;
"""


def _pgbench(url: str, clients: int, seconds: float) -> float:
    """Transactions per second of ``pgbench`` running PGBENCH_SCRIPT."""
    import tempfile

    import sqlalchemy as sa

    parsed = sa.make_url(url)
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(PGBENCH_SCRIPT)
        script.flush()
        command = [
            "pgbench", "-n", "-M", "prepared", "-f", script.name,
            "-c", str(clients), "-j", "2", "-T", str(int(seconds)),
            "-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432),
            "-U", parsed.username or "postgres", parsed.database or "",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    found = re.search(r"tps = ([0-9.]+)", done.stdout)
    assert found, done.stdout
    return float(found.group(1))


def _sequencing(url: str, stop: Any) -> None:
    """Run the sequencer in a loop until ``stop`` is set (what a worker taking writes does)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        while not stop.is_set():
            conn.exec_driver_sql("SELECT datastore_number_changes(NULL)")
            time.sleep(0.002)
    engine.dispose()


def commits(url: str, rounds: int, seconds: float, clients: int) -> None:
    """Commits per second of single-row INSERTs: no log, 0007's log, 0008's log."""
    import threading

    from datastore.storage import migrate
    from datastore.storage.engine import Database

    db = Database(url)
    results: dict[str, list[float]] = {}
    try:
        for revision in ("0007_changes", "head"):
            migrate.upgrade(db, revision)
            for n in range(rounds):
                for enabled in (True, False) if n % 2 == 0 else (False, True):
                    _trigger(url, enabled)
                    stop = threading.Event()
                    sequencer = threading.Thread(target=_sequencing, args=(url, stop))
                    if enabled and revision == "head":
                        sequencer.start()
                    label = f"{revision if enabled else 'no log'}"
                    results.setdefault(label, []).append(_pgbench(url, clients, seconds))
                    stop.set()
                    if sequencer.is_alive():
                        sequencer.join()
            _trigger(url, True)
    finally:
        db.dispose()
    names = {
        "no log": "no log (trigger disabled)",
        "0007_changes": "0007: numbered at commit under the space's row lock",
        "head": "0008: appended; a sequencer numbers after commit",
    }
    for label, rates in results.items():
        shown = ", ".join(f"{r:.0f}" for r in rates)
        print(f"| {names[label]} | {statistics.median(rates):.0f} (rounds: {shown}) |")


SEQUENCER_WRITERS = 8
"""Writer connections in ``--sequencer``, each committing one document at a time."""
SEQUENCER_PAUSE = 0.008
"""Each writer's pause between commits: about 1,000 writes a second in all, what the HTTP
benchmark's PATCH and POST reach (so a run numbers about 50)."""


def _writing(url: str, prefix: str, stop: Any) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    insert = sa.text(
        "INSERT INTO documents (space, collection, doc_id, body, created_at, updated_at,"
        " version) VALUES ('bench', 'c', :d, '{}', now(), now(), 1)"
    )
    with engine.connect() as conn:
        n = 0
        while not stop.is_set():
            n += 1
            conn.execute(insert, {"d": f"{prefix}-{n}"})
            time.sleep(SEQUENCER_PAUSE)
    engine.dispose()


def sequencer_runs(
    url: str, revision: str, seconds: float, imported: int
) -> list[tuple[float, int]]:
    """Migrate a fresh database to ``revision`` and import ``imported`` documents (their
    changes numbered); then, for ``seconds``, writers commit one
    document each at a time while the sequencer runs every ``SPACING_SECONDS`` as a worker
    taking writes does: each run's (milliseconds, changes numbered)."""
    import threading

    import sqlalchemy as sa

    from datastore.changes.sequencer import SPACING_SECONDS
    from datastore.storage import migrate
    from datastore.storage.engine import Database

    db = Database(url)
    try:
        migrate.upgrade(db, revision)
    finally:
        db.dispose()
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    runs: list[tuple[float, int]] = []
    stop = threading.Event()
    with engine.connect() as conn:
        # As on a busy database between two autovacuum passes (and as this machine runs).
        conn.exec_driver_sql("ALTER TABLE changes SET (autovacuum_enabled = false)")
        conn.exec_driver_sql(  # an import: its changes are numbered, their old entries stay
            "INSERT INTO documents (space, collection, doc_id, body, created_at, updated_at,"
            " version) SELECT 'bench', 'imported', 'd' || n, '{}', now(), now(), 1"
            f" FROM generate_series(1, {imported}) AS n"
        )
        number_all_pending(conn)
        writers = [
            threading.Thread(target=_writing, args=(url, f"w{n}", stop))
            for n in range(SEQUENCER_WRITERS)
        ]
        for writer in writers:
            writer.start()
        ends = time.monotonic() + seconds
        try:
            while time.monotonic() < ends:
                time.sleep(SPACING_SECONDS)
                began = time.perf_counter()
                numbered = conn.exec_driver_sql("SELECT datastore_number_changes(NULL)").scalar()
                runs.append(((time.perf_counter() - began) * 1000, int(numbered or 0)))
        finally:
            stop.set()
            for writer in writers:
                writer.join()
    engine.dispose()
    return runs


def sequencer(rounds: int, seconds: float, imported: int) -> None:
    """A sequencer run's time while writers commit and the log grows: 0008 against 0009."""
    names = {
        "0008_change_sequencer": "0008: unnumbered changes found through a partial index",
        "head": "0009: only changes past the writer-transaction watermark",
    }
    quarters = 4
    results: dict[str, list[list[tuple[float, int]]]] = {}
    for n in range(rounds):
        for revision in names if n % 2 == 0 else list(reversed(names)):
            with fresh_database(ADMIN, "datastore_bench_sequencer") as url:
                results.setdefault(revision, []).append(
                    sequencer_runs(url, revision, seconds, imported)
                )
    header = " | ".join(f"quarter {q + 1}" for q in range(quarters))
    print(f"| median run, ms (changes numbered per run) | {header} | changes written |")
    print("|---|" + "---|" * (quarters + 1))
    for revision, per_round in results.items():
        cells = []
        for q in range(quarters):
            parts = [r[len(r) * q // quarters : len(r) * (q + 1) // quarters] for r in per_round]
            times = [t for part in parts for t, _ in part]
            counts = [c for part in parts for _, c in part]
            cells.append(f"{statistics.median(times):.2f} ({statistics.median(counts):.0f})")
        written = statistics.median(sum(c for _, c in r) for r in per_round)
        print(f"| {names[revision]} | {' | '.join(cells)} | {written:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--writes", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--log-cost", action="store_true")
    parser.add_argument("--commits", action="store_true")
    parser.add_argument("--sequencer", action="store_true")
    parser.add_argument("--imported", type=int, default=200_000, help="--sequencer: import")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    if args.sequencer:
        sequencer(args.rounds, args.seconds, args.imported)
        return
    with fresh_database(ADMIN, "datastore_bench_changes") as url:
        if args.commits:
            print(f"| {args.clients} connections, commits/s | median |\n|---|---|")
            commits(url, args.rounds, args.seconds, args.clients)
            return
        port = _free_port()
        server = start_server(url, port)
        print(f"server pid {server.pid}", file=sys.stderr, flush=True)  # for py-spy
        try:
            print("| figure | value |\n|---|---|")
            if args.log_cost:
                asyncio.run(log_cost(url, port, server.pid, args.rounds, args.seconds))
            else:
                asyncio.run(
                    measure(
                        port, server.pid, args.subscribers, args.writes, args.seconds, args.rounds
                    )
                )
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(30)


if __name__ == "__main__":
    main()
