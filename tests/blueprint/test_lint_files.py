"""``datastore lint`` on what a repository holds, run as a user (or a pre-commit hook) runs
it: files that declare no ``openapi`` are skipped, Swagger 2.0 is named, and meta-schema and
path-parameter mistakes are one plain error each."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BLUEPRINTS = ROOT / "blueprints"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-m", "datastore.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_lint_checks_only_files_that_declare_openapi(tmp_path: Path) -> None:
    workflow = tmp_path / "ci.yml"
    workflow.write_text("name: CI\non: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n")
    swagger = tmp_path / "old.yaml"
    swagger.write_text("swagger: '2.0'\ninfo: {title: t, version: '1'}\npaths: {}\n")
    blueprint = str(BLUEPRINTS / "codehooks.yaml")
    assert run("lint", str(workflow), blueprint).returncode == 0
    strict = run("lint", "--strict", str(workflow), blueprint)
    assert (strict.returncode, strict.stdout) == (0, "")
    assert strict.stderr == f"datastore: skipped {workflow}: not a blueprint (no openapi: key)\n"
    old = run("lint", str(swagger))
    assert old.returncode == 1
    assert old.stdout.strip() == (
        f"{swagger}:1:10: error: this is a Swagger 2.0 file (swagger: '2.0'); a blueprint is "
        "OpenAPI 3.0 or 3.1: convert it first (for example: npx swagger2openapi FILE) [openapi]"
    )
    hook = (ROOT / ".pre-commit-hooks.yaml").read_text()
    assert "entry: datastore lint" in hook


def test_meta_schema_mistakes_and_misnamed_parameters_in_plain_words(tmp_path: Path) -> None:
    created = run("init", str(tmp_path / "svc"))
    assert created.returncode == 0, created.stderr
    api = tmp_path / "svc" / "api.yaml"
    text = api.read_text()
    api.write_text(
        text.replace("- name: itemid", "- name: item_id").replace("type: string", "type: int")
    )
    result = run("lint", str(api))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    assert lines[0].endswith(
        ":39:15: error: path parameter 'item_id' is not in the path /items/{itemid}: "
        "did you mean 'itemid'? (the names must match) [path-parameter]"
    )
    assert lines[1].endswith(
        ':43:17: error: type "int" is not a JSON Schema type; use one of array, boolean, '
        "integer, null, number, object, string (did you mean 'integer'?) [schema]"
    )
