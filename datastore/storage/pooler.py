"""PostgreSQL behind a transaction-mode pooler (PgBouncer ``pool_mode = transaction``).

Such a pooler hands each transaction to whichever server connection is free, so nothing may
outlive a transaction on its connection: no server-side prepared statements (PgBouncer 1.18
has no support for them in transaction mode), no session settings, no session-level advisory
locks (the datastore takes only ``pg_advisory_xact_lock``). It refuses the libpq ``options``
startup parameter outright. With ``database_pooler = transaction`` psycopg never prepares
(``prepare_threshold=None``) and every transaction of the synchronous engine begins with one
``set_config(..., is_local => true)`` statement: ``statement_timeout`` and
``idle_in_transaction_session_timeout`` hold for that transaction only. ``plan_cache_mode``
is dropped: it only steers prepared statements, and there are none (a listing is planned on
every run; ``docs/performance.md`` has the cost).
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

NO_POOLER = ""
TRANSACTION_POOLER = "transaction"
IDLE_IN_TRANSACTION_MS = 5000
"""As ``engine.IDLE_IN_TRANSACTION``: a datastore transaction never idles for seconds."""


def local_settings_sql(statement_timeout_ms: int) -> str:
    """The one statement that sets a transaction's settings (each for that transaction only)."""
    settings = [
        f"set_config('idle_in_transaction_session_timeout', '{IDLE_IN_TRANSACTION_MS}', true)"
    ]
    if statement_timeout_ms > 0:
        settings.append(f"set_config('statement_timeout', '{int(statement_timeout_ms)}', true)")
    return "SELECT " + ", ".join(settings)


def set_local_per_transaction(engine: Engine, statement_timeout_ms: int) -> None:
    """Run ``local_settings_sql`` first in every transaction of ``engine``."""
    statement = local_settings_sql(statement_timeout_ms)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(statement)
