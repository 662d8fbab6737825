"""A primary and a streaming hot standby of its own, for the read-replica tests and
``bench.http``'s replica target.

The test server at 127.0.0.1:5432 may refuse replication connections (its pg_hba.conf need
not allow them), so the fixture runs a small primary of its own: ``initdb`` (trust, which
allows replication from 127.0.0.1), ``pg_ctl start`` on a free port, then
``pg_basebackup -R`` into a second directory started on another port as a hot standby. As
root, every command runs as the ``postgres`` OS user (``runuser``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from bench.pgbouncer import free_port

SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{folder}'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = {shared_buffers}
max_connections = {max_connections}
wal_level = replica
max_wal_senders = 4
hot_standby = on
"""


def binaries() -> Path | None:
    """The folder of initdb, pg_ctl and pg_basebackup (on PATH, or Debian's
    /usr/lib/postgresql/<version>/bin, newest first), or None."""
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in candidates:
        if all((folder / name).exists() for name in ("initdb", "pg_ctl", "pg_basebackup")):
            return folder
    return None


def missing() -> str | None:
    """Why a replica cannot be made here, or None."""
    if binaries() is None:
        return "PostgreSQL's server binaries (initdb, pg_ctl, pg_basebackup) are not installed"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to start PostgreSQL as postgres"
    return None


@dataclass
class Pair:
    """A running primary and its hot standby."""

    folder: Path
    primary_port: int
    replica_port: int

    def url(self, port: int) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    @property
    def primary_url(self) -> str:
        return self.url(self.primary_port)

    @property
    def replica_url(self) -> str:
        return self.url(self.replica_port)

    def wait_caught_up(self, seconds: float = 300) -> None:
        """Wait until the replica has replayed everything the primary has written."""
        import sqlalchemy as sa

        primary = sa.create_engine(self.primary_url, isolation_level="AUTOCOMMIT")
        replica = sa.create_engine(self.replica_url, isolation_level="AUTOCOMMIT")
        try:
            with primary.connect() as conn:
                target = conn.exec_driver_sql("SELECT pg_current_wal_insert_lsn()").scalar()
            deadline = time.monotonic() + seconds
            with replica.connect() as conn:
                while not conn.exec_driver_sql(
                    "SELECT pg_last_wal_replay_lsn() >= %(t)s::pg_lsn", {"t": target}
                ).scalar():
                    if time.monotonic() > deadline:
                        raise RuntimeError("the replica did not catch up")
                    time.sleep(0.1)
        finally:
            primary.dispose()
            replica.dispose()

    def stop_replica(self) -> None:
        _run(["pg_ctl", "-D", str(self.folder / "replica"), "-m", "immediate", "-w", "stop"])

    def start_replica(self) -> None:
        _start(self.folder / "replica")


def _run(command: list[str]) -> None:
    folder = binaries()
    assert folder is not None
    command = [str(folder / command[0]), *command[1:]]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def _start(data: Path) -> None:
    _run(["pg_ctl", "-D", str(data), "-l", str(data.parent / f"{data.name}.log"), "-w", "start"])


@contextmanager
def replicated_pair(*, max_connections: int = 60, shared_buffers: str = "16MB") -> Iterator[Pair]:
    """Start a primary and a hot standby streaming from it; stop and remove both after."""
    folder = Path(tempfile.mkdtemp(prefix="datastore-replica-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    pair = Pair(folder, free_port(), free_port())
    primary, replica = folder / "primary", folder / "replica"
    started: list[Path] = []
    try:
        _run(["initdb", "-D", str(primary), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        with (primary / "postgresql.conf").open("a") as conf:
            conf.write(
                SETTINGS.format(
                    port=pair.primary_port,
                    folder=folder,
                    max_connections=max_connections,
                    shared_buffers=shared_buffers,
                )
            )
        _start(primary)
        started.append(primary)
        source = ["-h", "127.0.0.1", "-p", str(pair.primary_port), "-U", "postgres"]
        _run(["pg_basebackup", *source, "-D", str(replica), "-R", "-X", "stream"])
        with (replica / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {pair.replica_port}\n")
        _start(replica)
        started.append(replica)
        yield pair
    finally:
        for data in reversed(started):
            with suppress(subprocess.CalledProcessError):  # a test stopped it already
                _run(["pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(folder, ignore_errors=True)
