"""The first hour of a new user, through the command as they run it: wrong database URLs, a
busy port, short JWT secrets, rules no token can pass, handlers in the current folder, and
linting a repository's YAML files. Each mistake is one line on standard error (exit 2), or a
warning, never a traceback."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import jwt
import pytest

from tests.support.live import free_port

ROOT = Path(__file__).resolve().parents[1]
BLUEPRINTS = ROOT / "blueprints"
LONG_SECRET = "first-hour-test-secret-0123456789abcdef"


def run(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``datastore ARGS`` as a user runs it: ``-P`` keeps the working folder off the path
    (like the console script), PYTHONPATH points at this checkout."""
    return subprocess.run(
        [sys.executable, "-P", "-m", "datastore.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``datastore: ...`` line of a refused command (exit 2, no traceback)."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "warning:" not in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("datastore: ")
    return lines[0]


@contextmanager
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _postgres_admin_url() -> str:
    from tests.conftest import ADMIN_URL, _postgres_reachable

    if _postgres_reachable() is not None:
        pytest.skip("PostgreSQL unreachable")
    return ADMIN_URL


# -- database URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://x@127.0.0.1/db", "unsupported database 'mysql'"),
        ("not a url", "is not a URL"),
        ("postgresql+psycopg2://u@127.0.0.1/db", "unsupported driver"),
    ],
)
def test_bad_database_urls_are_one_line(tmp_path: Path, url: str, expected: str) -> None:
    blueprint = str(BLUEPRINTS / "events.yaml")
    (tmp_path / "a.jsonl").write_text('{"_id": "a"}\n')
    for command in (
        ["serve", blueprint, "--database", url],
        ["keys", "add", "--database", url],
        ["migrate", "--database", url],
        ["import", "events", "a.jsonl", "--database", url],
        ["export", "events", "--database", url],
    ):
        line = one_line(run(*command, cwd=tmp_path))
        assert expected in line, command
        assert "sqlite:///PATH or postgresql://USER@HOST:PORT/NAME" in line


def test_an_unreachable_postgresql_is_one_line_with_the_url_and_no_password() -> None:
    port = free_port()  # nothing listens there
    line = one_line(run("migrate", "--database", f"postgresql://ann:hunter2@127.0.0.1:{port}/shop"))
    assert (
        f"cannot connect to PostgreSQL at postgresql+psycopg://ann:***@127.0.0.1:{port}/shop"
        in line
    )
    assert "hunter2" not in line
    assert "createdb -p" in line and "shop" in line


def test_a_missing_postgresql_database_says_how_to_create_it() -> None:
    admin = _postgres_admin_url()
    url = admin.rsplit("/", 1)[0].replace("://postgres@", "://postgres:pw@") + "/no_such_db_x1"
    for command in (["migrate"], ["keys", "add"]):
        line = one_line(run(*command, "--database", url))
        assert "the database 'no_such_db_x1' does not exist at postgresql+psycopg://" in line
        assert ":***@" in line and ":pw@" not in line
        assert line.endswith("create it with: createdb -U postgres no_such_db_x1")


def test_a_sqlite_file_in_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    line = one_line(run("migrate", "--database", f"sqlite:///{tmp_path}/nope/x.sqlite3"))
    assert f"cannot open the SQLite database {tmp_path}/nope/x.sqlite3" in line


# -- the port and the start-up line --------------------------------------------------------


def test_a_busy_port_is_one_line_before_anything_else_happens(tmp_path: Path) -> None:
    with busy_port() as port:
        result = run("serve", str(BLUEPRINTS / "events.yaml"), "--port", str(port), cwd=tmp_path)
    line = one_line(result)
    assert line == (
        f"datastore: port {port} on 127.0.0.1 is in use (another server is listening there); "
        f"choose another with --port, e.g. --port {port + 1}"
    )
    assert "serving on" not in result.stderr
    assert not (tmp_path / "datastore.sqlite3").exists()  # no migrations ran


def _start_line(tmp_path: Path, *args: str) -> str:
    """The ``serving on`` line of a real server (which is then stopped)."""
    server = subprocess.Popen(
        [sys.executable, "-P", "-m", "datastore.cli", "serve", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        for line in server.stderr:
            if "serving on" in line:
                return line.strip()
        raise AssertionError(f"no start-up line; exit {server.wait()}")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.communicate(timeout=60)  # a graceful stop; generous for a loaded machine
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()  # the pipe closed, not left to a later test's warnings
            raise


def test_the_start_up_line_names_the_database(tmp_path: Path) -> None:
    port = free_port()
    line = _start_line(tmp_path, str(BLUEPRINTS / "events.yaml"), "--port", str(port))
    assert line == (
        f"datastore: serving on http://127.0.0.1:{port} "
        f"(database: {tmp_path.resolve() / 'datastore.sqlite3'})"
    )


@pytest.mark.postgresql
def test_the_start_up_line_hides_the_password(tmp_path: Path, postgres_url: str) -> None:
    url = postgres_url.replace("://postgres@", "://postgres:s3cr3t@")
    port = free_port()
    line = _start_line(
        tmp_path, str(BLUEPRINTS / "events.yaml"), "--port", str(port), "--database", url
    )
    assert line.endswith(f"(database: {url.replace(':s3cr3t@', ':***@')})")


# -- JWT settings --------------------------------------------------------------------------


def test_short_jwt_secrets_are_refused_in_one_line() -> None:
    hint = "(make one with: openssl rand -hex 32)"
    served = one_line(run("serve", str(BLUEPRINTS / "events.yaml"), "--jwt-secret", "short"))
    assert served == f"datastore: the JWT secret is 5 bytes; HS256 needs at least 32 {hint}"
    assert one_line(run("token", "--secret", "short")) == served
    from_env = run("token", env={"DATASTORE_JWT_SECRET": "x" * 31})
    assert "31 bytes; HS256 needs at least 32" in one_line(from_env)
    for algorithm, needed in (("HS384", 48), ("HS512", 64)):
        line = one_line(run("token", "--secret", LONG_SECRET, "--algorithm", algorithm))
        assert f"{len(LONG_SECRET)} bytes; {algorithm} needs at least {needed}" in line
    token = run("token", "--secret", "y" * 64, "--algorithm", "HS512")
    assert jwt.decode(token.stdout.strip(), "y" * 64, algorithms=["HS512"])


def test_a_secret_verifies_only_algorithms_it_is_long_enough_for() -> None:
    """No PyJWT key-length warning at a request: a 32-byte secret accepts HS256 only."""
    from datastore.auth.credentials import JwtSettings, JwtVerifier
    from datastore.errors import Unauthorized

    secret = "z" * 40
    verifier = JwtVerifier(JwtSettings(secret=secret))
    assert verifier.algorithms == ("HS256",)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # minting it is what PyJWT warns about
        strong = jwt.encode({"sub": "u"}, secret, algorithm="HS512")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(Unauthorized, match="algorithm"):
            verifier.verify(strong)
    assert JwtVerifier(JwtSettings(secret="z" * 64)).algorithms == ("HS256", "HS384", "HS512")


def test_rules_that_read_jwt_warn_when_no_key_is_configured(tmp_path: Path) -> None:
    """The warning comes before the port check, so a busy port shows it without serving."""
    with busy_port() as port:
        result = run("serve", str(BLUEPRINTS / "multi-user.yaml"), "--port", str(port))
        keyed = run(
            "serve",
            str(BLUEPRINTS / "multi-user.yaml"),
            "--port",
            str(port),
            "--jwt-secret",
            LONG_SECRET,
        )
        spaces = run(
            "serve", "--space", f"app={BLUEPRINTS / 'multi-user.yaml'}", "--port", str(port)
        )
    warning = next(line for line in result.stderr.splitlines() if "no JWT key" in line)
    assert warning.startswith(
        "datastore: warning: no JWT key is configured (--jwt-secret, --jwt-public-key or --jwks; "
        "--dev for a development secret), so bearer tokens are refused and these rules, which "
        "read jwt., can never pass: POST /posts, "
    )
    assert "PATCH /users/{userid}/notes/{noteid}" in warning
    assert "GET /posts/{postid}" not in warning  # published posts need no token
    assert "no JWT key" not in keyed.stderr
    assert "POST /app/posts" in spaces.stderr


# -- workers -------------------------------------------------------------------------------


def test_a_worker_imports_handlers_from_the_current_folder(tmp_path: Path) -> None:
    from datastore.queue.service import QueueService
    from datastore.storage import migrate
    from datastore.storage.engine import Database

    url = f"sqlite:///{tmp_path / 'datastore.sqlite3'}"
    db = Database(url)
    migrate.upgrade(db)
    asyncio.run(QueueService(db, "default").enqueue("emails", {"to": "ann"}))
    db.dispose()
    (tmp_path / "myjobs.py").write_text(
        "from pathlib import Path\n\n"
        "def send(payload):\n"
        "    Path('sent.txt').write_text(payload['to'])\n"
    )
    worker = subprocess.Popen(
        [
            *(sys.executable, "-P", "-m", "datastore.cli", "worker"),
            *(str(BLUEPRINTS / "codehooks.yaml"), "--handler", "emails=myjobs:send"),
            *("--poll-interval", "0.1"),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "sent.txt").exists():
            assert worker.poll() is None, worker.communicate()[1]
            assert time.monotonic() < deadline, "the job was not run"
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=20)
    assert (tmp_path / "sent.txt").read_text() == "ann"
    assert "worker stopped after 1 jobs" in stderr


# -- answers -------------------------------------------------------------------------------


def test_an_unsupported_content_type_is_said_in_words(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from datastore.app import create_app, serve_blueprint_file
    from datastore.config import Settings

    app = create_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}"),
        [serve_blueprint_file(BLUEPRINTS / "events.yaml")],
    )
    with TestClient(app) as client:
        answer = client.post("/events", content="hello", headers={"Content-Type": "text/plain"})
    assert answer.status_code == 415
    assert answer.json()["detail"] == (
        "Content-Type text/plain is not accepted here; send application/json."
    )


COLLECT = [sys.executable, "-m", "pytest", "--collect-only", "-p", "no:cacheprovider"]
COLLECT += ["tests/test_config.py"]


def test_the_pytest_header_names_the_backends() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-p",
            "no:cacheprovider",
            "tests/test_config.py",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    header = next(line for line in result.stdout.splitlines() if "datastore backends" in line)
    assert header.startswith(
        ("datastore backends: SQLite and PostgreSQL (found at ", "datastore backends: SQLite only")
    )
    down = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-p",
            "no:cacheprovider",
            "tests/test_config.py",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATASTORE_TEST_POSTGRES_URL": f"postgresql://nobody@127.0.0.1:{free_port()}/x",
            "DATASTORE_REQUIRE_POSTGRES": "",
            "CI": "",
        },
    )
    assert "datastore backends: SQLite only; PostgreSQL not found at postgresql://" in down.stdout
    assert "its tests are skipped" in down.stdout
