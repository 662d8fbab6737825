"""Kinto, the peer: installed in a throwaway virtualenv, configured for PostgreSQL (storage and
permissions; the cache in process memory, as ../shared/research/kinto-run.md recommends for
load tests), served by gunicorn with the same worker count, loaded with the same data.

Kinto's records API is the equivalent of scenarios get, post and list-eq. Its JSON-Schema
validation of records is switched on. Its concurrent POSTs into one collection collide on the
collection's unique millisecond timestamps (409, upstream Kinto/kinto#602), so the POST
scenario spreads over eight collections.
"""

from __future__ import annotations

import base64
import json
import random
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import sqlalchemy as sa

from bench.http import data
from bench.http.servers import Server, free_port
from bench.http.wrk import Load

BUCKET = "bench"
AUTH = "Basic " + base64.b64encode(b"admin:s3cret").decode()
POST_COLLECTIONS = 8
INI = """\
[app:main]
use = egg:kinto
kinto.includes = kinto.plugins.accounts
kinto.storage_backend = kinto.core.storage.postgresql
kinto.storage_url = {url}
kinto.storage_pool_size = 10
kinto.cache_backend = kinto.core.cache.memory
kinto.permission_backend = kinto.core.permission.postgresql
kinto.permission_url = {url}
kinto.permission_pool_size = 10
kinto.userid_hmac_secret = 5fde8ba90bc8398c4ec4e0285aa27433c37045f44bc77066116ddaec525e462c
multiauth.policies = account
multiauth.policy.account.use = kinto.plugins.accounts.AccountsPolicy
kinto.account_create_principals = system.Everyone
kinto.account_write_principals = account:admin
kinto.bucket_create_principals = account:admin
kinto.experimental_collection_schema_validation = true

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = plain

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = WARNING
formatter = plain

[formatter_plain]
format = %(message)s
"""


def install(venv: Path) -> Path:
    """A virtualenv with ``kinto[postgresql]`` and gunicorn (kept when it already has them)."""
    kinto = venv / "bin" / "kinto"
    if not kinto.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "kinto[postgresql]", "gunicorn"],
            check=True,
        )
    return kinto


class Kinto:
    name = "kinto"

    def __init__(
        self, database_url: str, work: Path, workers: int, documents: int, venv: Path
    ) -> None:
        self.database_url = database_url
        self.documents = documents
        kinto = install(venv)
        url = database_url.replace("postgresql+psycopg://", "postgresql://")
        self.ini = work / "kinto.ini"
        self.ini.write_text(INI.format(url=url))
        for command in (
            ["migrate"],
            ["create-user", "-u", "admin", "-p", "s3cret"],
        ):
            subprocess.run(
                [str(kinto), *command[:1], "--ini", str(self.ini), *command[1:]],
                check=True,
                capture_output=True,
            )
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.server = Server(
            self.name,
            [
                str(venv / "bin" / "gunicorn"),
                "--paste",
                str(self.ini),
                "-b",
                f"127.0.0.1:{self.port}",
                "-w",
                str(workers),
                "--threads",
                "4",
            ],
            env={"PATH": "/usr/bin:/bin"},
            health_url=f"{self.base_url}/v1/__heartbeat__",
            log=work / "kinto.log",
        )

    def _put(self, path: str, body: dict[str, object]) -> None:
        request = urllib.request.Request(
            f"{self.base_url}/v1{path}",
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"Content-Type": "application/json", "Authorization": AUTH},
        )
        with urllib.request.urlopen(request, timeout=30):
            pass

    def prepare(self) -> None:
        """Once the server runs: the bucket (publicly readable), the collections with the item
        schema, and the seeded records written straight into Kinto's table."""
        self._put(f"/buckets/{BUCKET}", {"data": {}, "permissions": {"read": ["system.Everyone"]}})
        names = ["items", *(f"posts{n}" for n in range(POST_COLLECTIONS))]
        for name in names:
            self._put(
                f"/buckets/{BUCKET}/collections/{name}", {"data": {"schema": data.ITEM_SCHEMA}}
            )
        parent = f"/buckets/{BUCKET}/collections/items"
        engine = sa.create_engine(self.database_url)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    "ALTER TABLE objects DISABLE TRIGGER tgr_objects_last_modified"
                )
                conn.exec_driver_sql(
                    "INSERT INTO objects (id, parent_id, resource_name, last_modified, data,"
                    f" deleted) SELECT {data.doc_id_sql('n')}, %(parent)s, 'record',"
                    " timestamp '2026-01-01' + n * interval '1 millisecond',"
                    f" {data.item_sql('n')}, false FROM generate_series(1, %(count)s) AS n",
                    {"parent": parent, "count": self.documents},
                )
                conn.exec_driver_sql("ALTER TABLE objects ENABLE TRIGGER tgr_objects_last_modified")
                conn.exec_driver_sql(
                    "INSERT INTO timestamps (parent_id, resource_name, last_modified)"
                    " VALUES (%(parent)s, 'record', timestamp '2026-01-01' + %(count)s"
                    " * interval '1 millisecond') ON CONFLICT (parent_id, resource_name)"
                    " DO UPDATE SET last_modified = EXCLUDED.last_modified",
                    {"parent": parent, "count": self.documents + 1},
                )
            with engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    "VACUUM ANALYZE objects"
                )
        finally:
            engine.dispose()

    def loads(self, rng: random.Random) -> dict[str, Load]:
        records = f"/v1/buckets/{BUCKET}/collections/items/records"
        items = [f"{records}/{data.doc_id(rng.randint(1, self.documents))}" for _ in range(5000)]
        body = json.dumps({"data": data.post_body()}).encode()
        lists = [
            f"{records}?" + urllib.parse.urlencode({"category": f"cat{c}", "_limit": 20})
            for c in range(data.CATEGORIES)
        ]
        return {
            "get": Load("GET", items),
            "post": Load(
                "POST",
                [
                    f"/v1/buckets/{BUCKET}/collections/posts{n}/records"
                    for n in range(POST_COLLECTIONS)
                ],
                {"Content-Type": "application/json", "Authorization": AUTH},
                body,
            ),
            "list-eq": Load("GET", lists),
        }
