"""The datastore command: exit codes and output of lint, bundle, serve errors, keys, token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jwt
import yaml

from tests.support.live import free_port, wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]
BROKEN = ROOT / "tests" / "blueprint" / "broken"


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "datastore.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def test_lint_exit_codes_and_formats() -> None:
    clean = run("lint", "blueprints/codehooks.yaml")
    assert (clean.returncode, clean.stdout) == (0, "")
    broken = run("lint", str(BROKEN / "many.yaml"))
    assert broken.returncode == 1
    assert ":8:30: error: ACL: unknown operator '=='" in broken.stdout
    as_json = json.loads(run("lint", "--format", "json", str(BROKEN / "many.yaml")).stdout)
    assert {"file", "line", "column", "severity", "rule", "message"} == set(as_json[0])
    github = run("lint", "--format", "github", str(BROKEN / "many.yaml")).stdout
    assert github.startswith("::error file=")
    assert run("lint", "--strict", "blueprints/events.yaml").returncode == 1
    assert run("lint", "blueprints/events.yaml").returncode == 0


def test_bundle_inlines_files(tmp_path: Path) -> None:
    out = tmp_path / "bundled.yaml"
    assert run("bundle", "blueprints/events.yaml", "-o", str(out)).returncode == 0
    document = yaml.safe_load(out.read_text())
    assert "event" in document["components"]["schemas"]
    assert "./schemas" not in out.read_text()


def test_serve_refuses_a_broken_blueprint() -> None:
    result = run("serve", str(BROKEN / "many.yaml"))
    assert result.returncode == 1
    assert "many.yaml:8:30" in result.stderr


def test_configuration_errors_exit_2() -> None:
    result = run("serve", "blueprints/events.yaml", env={"DATASTORE_PORT": "eighty"})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert run("serve", "no/such/file.yaml").returncode == 2
    missing_key = run("serve", "blueprints/events.yaml", "--jwt-public-key", "/no/such.pem")
    assert missing_key.returncode == 2
    assert (
        missing_key.stderr.strip()
        .splitlines()[-1]
        .startswith("datastore: cannot read the JWT public key")
    )


def test_keys_and_token(tmp_path: Path) -> None:
    env = {"DATASTORE_DATABASE_URL": f"sqlite:///{tmp_path / 'k.sqlite3'}"}
    added = run("keys", "add", "--readonly", env=env)
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert key.startswith("dsk_")
    listed = run("keys", "list", env=env).stdout
    key_id = key.split("_")[1]
    assert key_id in listed and "read-only" in listed and key not in listed
    assert run("keys", "revoke", key_id, env=env).returncode == 0
    assert run("keys", "revoke", key_id, env=env).returncode == 1
    secret = "cli-test-secret-cli-test-secret-0123"
    token = run("token", "--secret", secret, "--claims", '{"sub": "u1"}', "--expires", "1h")
    claims = jwt.decode(token.stdout.strip(), secret, algorithms=["HS256"])
    assert claims["sub"] == "u1" and claims["exp"] > claims["iat"]
    default = run("token", "--secret", secret, "--claims", '{"sub": "u1"}')  # an hour
    claims = jwt.decode(default.stdout.strip(), secret, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 3600 and default.stderr == ""
    forever = run("token", "--secret", secret, "--expires", "never")
    assert "exp" not in jwt.decode(forever.stdout.strip(), secret, algorithms=["HS256"])
    assert "servers accept it only with --jwt-allow-no-exp" in forever.stderr
    assert run("token", "--secret", secret, "--claims", "[1]").returncode == 2
    assert run("token", "--secret", secret, "--expires", "soon").returncode == 2


def test_serve_runs_a_real_server(tmp_path: Path) -> None:

    import httpx

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "datastore.cli",
            "serve",
            str(ROOT / "blueprints" / "events.yaml"),
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url)
        created = httpx.post(
            f"{url}/events", json={"name": "x", "eventDate": "2026-01-01T00:00:00Z"}
        )
        assert created.status_code == 201
        assert (tmp_path / "datastore.sqlite3").exists()  # the embedded default
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_init_scaffolds_a_project_that_lints_and_serves(tmp_path: Path) -> None:
    target = tmp_path / "my-service"
    created = run("init", str(target))
    assert created.returncode == 0, created.stderr
    assert {p.name for p in target.iterdir()} == {
        "api.yaml",
        "schemas",
        "README.md",
        "requests.http",
        "blueprint.schema.json",
    }
    assert run("lint", str(target / "api.yaml")).returncode == 0
    assert run("init", str(target)).returncode == 2  # not empty any more
    from starlette.testclient import TestClient

    from datastore.app import create_app, serve_blueprint_file
    from datastore.config import Settings

    app = create_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}", dev=True),
        [serve_blueprint_file(target / "api.yaml")],
    )
    with TestClient(app) as client:
        token = client.post("/__jwt", json={"sub": "me"}).json()["token"]
        made = client.post(
            "/items",
            json={"owner": "me", "title": "Buy milk"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert made.status_code == 201
        assert client.get("/items").json()[0]["done"] is False


def test_schema_of_the_blueprint_format(tmp_path: Path) -> None:
    import jsonschema

    out = tmp_path / "blueprint.schema.json"
    assert run("schema", "-o", str(out)).returncode == 0
    schema = json.loads(out.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    document = yaml.safe_load((ROOT / "blueprints" / "codehooks.yaml").read_text())
    assert list(validator.iter_errors(document)) == []
    broken = {**document, "paths": {"/a": {"get": {"x-datastore-acl": 5, "responses": {}}}}}
    assert any("x-datastore-acl" in list(e.absolute_path) for e in validator.iter_errors(broken))
    source = schema["$defs"]["datastore-property"]["properties"]["x-datastore-source"]
    assert "document.$id" in source["enum"]
