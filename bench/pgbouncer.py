"""A PgBouncer of its own, in transaction mode, in front of a PostgreSQL server: for the
tests (``tests/conftest.py``) and ``bench.http``'s PgBouncer target.

Debian's ``pgbouncer`` (``.ci/run`` installs it). Its configuration is written into a
temporary directory; it listens on a free port, trusts every client and reaches the server as
the URL's user; it refuses to run as root, so as root it is started with ``-u postgres``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

POOLED_URLS: set[str] = set()
"""Database URLs made by ``pooled_url`` (they reach PostgreSQL through a PgBouncer)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def missing() -> str | None:
    """Why PgBouncer cannot run here, or None."""
    if shutil.which("pgbouncer") is None:
        return "the pgbouncer binary is not installed (Debian: apt-get install pgbouncer)"
    return None


SERVER_CONNECTIONS = 20
"""PgBouncer's connections to the server per database and user: what it is for (the
datastore's own pools would hold up to 3 x pool_size per worker)."""


def _config(folder: Path, port: int, server: sa.URL) -> str:
    target = f"host={server.host or '127.0.0.1'} port={server.port or 5432}"
    return f"""\
[databases]
* = {target} user={server.username or "postgres"}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "userlist.txt"}
pool_mode = transaction
max_client_conn = 2000
default_pool_size = {SERVER_CONNECTIONS}
ignore_startup_parameters = extra_float_digits
server_reset_query =
logfile = {folder / "pgbouncer.log"}
pidfile = {folder / "pgbouncer.pid"}
"""


@contextmanager
def pgbouncer(server_url: str) -> Iterator[int]:
    """Run PgBouncer in front of the server of ``server_url``; yields its port."""
    server = sa.make_url(server_url)
    folder = Path(tempfile.mkdtemp(prefix="datastore-pgbouncer-"))
    folder.chmod(0o777)  # run as postgres when the tests run as root
    port = free_port()
    (folder / "userlist.txt").write_text(f'"{server.username or "postgres"}" ""\n')
    ini = folder / "pgbouncer.ini"
    ini.write_text(_config(folder, port, server))
    command = ["pgbouncer", str(ini)]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_listening(process, port, folder)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, folder: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (
                (folder / "pgbouncer.log").read_text()
                if (folder / "pgbouncer.log").exists()
                else ""
            )
            raise RuntimeError(f"pgbouncer exited: {log[-2000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("pgbouncer did not start listening")


def pooled_url(database_url: str, port: int) -> str:
    """``database_url`` through the PgBouncer on ``port`` (same database and user)."""
    url = sa.make_url(database_url).set(host="127.0.0.1", port=port)
    shown = url.render_as_string(hide_password=False)
    POOLED_URLS.add(shown)
    return shown
