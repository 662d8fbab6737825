"""Where ``datastore diff`` reads a blueprint from: a file, ``git:REF:path``, or the text a
database last served (``--against-database``).

A blueprint at a git revision is read with every file it references at that revision: the
revision's tree is extracted (``git archive``) into a temporary folder and loaded from there;
positions then name ``git:REF:path``. A served blueprint is the bundled text ``serve``
recorded; positions name ``database:SPACE@HASH``, lines being those of that text (what
``datastore bundle`` writes).
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

from datastore.blueprint.loader import LoadedBlueprint, Location, load_blueprint


class SourceError(ValueError):
    """A blueprint that cannot be read (one line)."""


def _relabel(loaded: LoadedBlueprint, root: Path, label: str) -> LoadedBlueprint:
    """The same blueprint, its positions naming ``label + path inside root``."""
    prefixes = [str(root) + "/", str(root.resolve()) + "/"]

    def rename(location: Location) -> Location:
        file, line, column = location
        for prefix in prefixes:
            if file.startswith(prefix):
                return (label + file[len(prefix) :], line, column)
        return location

    positions = {pointer: rename(loc) for pointer, loc in loaded.positions.items()}
    return LoadedBlueprint(loaded.path, loaded.document, positions)


def _git(args: list[str], cwd: Path) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except OSError as exc:
        raise SourceError(f"cannot run git: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise SourceError(f"git {' '.join(args)}: {message[-1] if message else 'failed'}")
    return done.stdout


def load_from_git(spec: str, cwd: Path | None = None) -> LoadedBlueprint:
    """``git:REF:path`` (path from the repository root, or ``./path`` from the current
    folder) with the files it references, as they are at REF."""
    ref, sep, path = spec.removeprefix("git:").partition(":")
    if not sep or not ref or not path:
        raise SourceError(f"expected git:REF:path, got {spec!r}")
    here = (cwd or Path.cwd()).resolve()
    top = Path(_git(["rev-parse", "--show-toplevel"], here).decode().strip())
    if path.startswith("./"):
        prefix = _git(["rev-parse", "--show-prefix"], here).decode().strip()
        path = prefix + path[2:]
    archive = _git(["archive", "--format=tar", ref], top)
    with tempfile.TemporaryDirectory(prefix="datastore-diff-") as folder:
        root = Path(folder)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(root, filter="data")
        if not (root / path).is_file():
            raise SourceError(f"no file {path} at {ref}")
        return _relabel(load_blueprint(root / path), root, f"git:{ref}:")


def load_from_text(text: str, label: str) -> LoadedBlueprint:
    """A bundled blueprint given as text (what a database recorded), positions named
    ``label``."""
    with tempfile.TemporaryDirectory(prefix="datastore-diff-") as folder:
        root = Path(folder)
        (root / "blueprint.yaml").write_text(text, encoding="utf-8")
        loaded = load_blueprint(root / "blueprint.yaml")
    positions = {p: (label, line, col) for p, (_, line, col) in loaded.positions.items()}
    return LoadedBlueprint(loaded.path, loaded.document, positions)


def load_source(spec: str) -> LoadedBlueprint:
    """A file path or ``git:REF:path``; raises SourceError or BlueprintError."""
    if spec.startswith("git:"):
        return load_from_git(spec)
    if not Path(spec).is_file():
        raise SourceError(f"no blueprint at {spec}")
    return load_blueprint(spec)
