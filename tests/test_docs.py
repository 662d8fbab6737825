"""The documentation covers what exists: commands, guides linked, example blueprints."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.live import free_port

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_every_command_is_documented() -> None:
    from datastore.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    text = (DOCS / "cli.md").read_text()
    for name in commands:
        assert f"datastore {name}" in text, name


def test_links_between_documents_resolve() -> None:
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#]+?\.(?:md|yaml))\)", page.read_text()):
            if target.startswith("http"):
                continue
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_every_example_blueprint_is_documented() -> None:
    text = (DOCS / "blueprints.md").read_text()
    for path in (ROOT / "blueprints").glob("*.yaml"):
        assert path.name in text, path.name


def test_the_tutorial_runs(tmp_path: Path) -> None:
    """Every command of docs/tutorial.md, in order, in a fresh folder."""
    import os
    import shutil
    import subprocess
    import sys

    if shutil.which("curl") is None:
        import pytest

        pytest.skip("curl is not installed")
    blocks = re.findall(r"```sh\n(.*?)```", (DOCS / "tutorial.md").read_text(), re.S)
    # The tutorial's port, swapped for a free one: two runs at once must not meet.
    commands = "\n".join(blocks).replace("8123", str(free_port()))
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + commands
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if shutil.which("datastore") is None:  # not installed as a command: a shim
        shim = bin_dir / "datastore"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m datastore.cli "$@"\n')
        shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"request_id"' not in result.stderr  # --log-level warning: no access log in between
    out = result.stdout
    assert '"title":"Buy milk"' in out and "}401" in out and '"status":"403"' in out
    assert '"invalid-params"' in out and '"name":"extra"' in out
    assert out.rstrip().endswith("204")


def test_the_architecture_layout_is_the_checkout() -> None:
    """docs/architecture.md's top level names every folder, and the Alembic scripts are a real
    top-level folder that the migrations runner uses (installed as ``datastore.migrations``)."""
    from datastore.storage import migrate

    text = (DOCS / "architecture.md").read_text()
    layout = text.split("## Top level", 1)[1].split("```")[1]
    named = {line.split()[0] for line in layout.splitlines() if line.strip()}
    folders = {
        f"{p.name}/"
        for p in ROOT.iterdir()
        if p.is_dir() and not p.name.startswith(".") and not p.name.endswith(".egg-info")
    } - {"build/", "dist/"}
    assert folders <= named, folders - named
    migrations = ROOT / "migrations"
    assert migrations.is_dir() and not migrations.is_symlink()
    assert (migrations / "env.py").is_file() and not (ROOT / "datastore" / "migrations").exists()
    assert migrations == migrate.MIGRATIONS
    assert '"datastore.migrations": "migrations"' in (ROOT / "setup.py").read_text()


def test_first_steps_in_the_readme_and_the_scaffold_work_as_written(tmp_path: Path) -> None:
    """PostgreSQL needs its database created first; a repeated PUT changes the version the
    next step's If-Match names; init's hint serves from inside the project (its SQLite file
    lands there); the scaffold links nowhere made up."""
    import os
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    postgres = readme.split("On PostgreSQL", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    assert postgres.index("createdb ") < postgres.index("datastore serve")
    database = postgres.split("createdb ", 1)[1].splitlines()[0].split()[-1]
    assert postgres.split("--database ", 1)[1].split()[0].endswith(f"/{database}")
    put = readme.split("-X PUT", 1)[0].rsplit("\n\n", 1)[1]
    assert "412" in put and "version" in put
    created = subprocess.run(
        [sys.executable, "-m", "datastore.cli", "init", "my-service"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert (
        created.stdout.splitlines()[-1] == "next: cd my-service && datastore serve api.yaml --dev"
    )
    assert "example.invalid" not in (tmp_path / "my-service" / "README.md").read_text()
