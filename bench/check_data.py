"""``datastore check-data`` over many documents: wall time and peak memory (RSS) of the command.

    python -m bench.check_data [--count 100000] [--backend sqlite,postgresql]

Loads ``count`` documents into one collection (1 in 100 invalid, 1 in 50 inheriting the
required ``name`` from a base document), then runs the command in a child process, once on an
empty space (the baseline) and once on the loaded one. Constant memory shows as the same peak
RSS for any count.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import bulk_load, database
from datastore.storage.engine import Database
from datastore.storage.tables import documents, lineage

ROOT = Path(__file__).resolve().parents[1]
BLUEPRINT = """\
openapi: 3.1.0
info: {title: bench, version: "1"}
paths:
  /events/{id}:
    put:
      x-datastore-acl: public
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/event'}
      responses: {'200': {description: ok}}
components:
  schemas:
    event:
      type: object
      properties:
        name: {type: string, minLength: 1}
        n: {type: integer, minimum: 0}
        tags: {type: array, items: {type: string}}
        parent: {type: [string, "null"], x-datastore-source: document.$extends}
      required: [name]
"""


def _body(n: int) -> dict[str, Any]:
    if n % 100 == 99:
        return {"n": -n}  # invalid twice over: no name, negative n
    if n % 50 == 1:
        return {"n": n}  # inherits its name from d0000000
    return {"name": f"event {n}", "n": n, "tags": ["a", "b"]}


def _link_children(db: Database, space: str, count: int) -> None:
    """Make the documents without a name (1 in 50) extend d0000000."""
    ids = [f"d{n:07}" for n in range(count) if n % 50 == 1 and n % 100 != 99]
    with db.write() as conn:
        pks = {
            row.doc_id: row.pk
            for row in conn.execute(
                sa.select(documents.c.pk, documents.c.doc_id).where(
                    documents.c.space == space, documents.c.doc_id.in_(["d0000000", *ids])
                )
            )
        }
        base = pks.pop("d0000000")
        conn.execute(
            sa.update(documents)
            .where(documents.c.pk.in_(list(pks.values())))
            .values(extends="/events/d0000000")
        )
        rows = [{"ancestor_pk": base, "descendant_pk": pk, "depth": 1} for pk in pks.values()]
        if rows:
            conn.execute(sa.insert(lineage), rows)


def _run(blueprint: Path, url: str, space: str) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, last output line) of one check-data run."""
    command = [sys.executable, "-m", "datastore.cli", "check-data", str(blueprint)]
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        child = subprocess.Popen(
            [*command, "--database", url, "--space", space],
            stdout=out,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        _, _, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = 0  # reaped above
        out.seek(0)
        last = out.read().strip().splitlines()[-1]
    return seconds, usage.ru_maxrss / 1024, last


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--backend", default="sqlite,postgresql")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        blueprint = Path(folder) / "api.yaml"
        blueprint.write_text(BLUEPRINT)
        print("| backend | documents | seconds | peak RSS MiB | result |")
        print("|---|---|---|---|---|")
        for backend in args.backend.split(","):
            with database(backend) as db:
                empty = _run(blueprint, db.url, "empty")
                print(f"| {backend} | 0 | {empty[0]:.1f} | {empty[1]:.0f} | {empty[2]} |")
                load_start = time.perf_counter()
                bulk_load(db, "bench", "events", args.count, _body)
                _link_children(db, "bench", args.count)
                loaded = time.perf_counter() - load_start
                seconds, peak, result = _run(blueprint, db.url, "bench")
                print(
                    f"| {backend} | {args.count:,} | {seconds:.1f} | {peak:.0f} | {result} |"
                    f" (loaded in {loaded:.0f} s)"
                )


if __name__ == "__main__":
    main()
