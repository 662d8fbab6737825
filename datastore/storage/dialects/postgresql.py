"""The compiler's SQL on PostgreSQL: ``jsonb`` operators and functions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from datastore.storage.dialects.base import (
    Dialect,
    const,
    lineage_ancestor,
    lineage_of_document,
)
from datastore.storage.prepared import exact_number, json_text

JSONB = postgresql.JSONB


class PostgreSQL(Dialect):
    name = "postgresql"
    equality_by_containment = True
    notifications = True
    sequenced_changes = True

    def field(self, body: ColumnElement[Any], path: tuple[str, ...]) -> ColumnElement[Any]:
        if not path:
            return body
        # Keys are written into the SQL (quoted by SQLAlchemy), not bound: an expression index
        # applies only where the query repeats its expression, constants included, and a
        # prepared statement's generic plan sees bound values as unknown.
        parts = [sa.literal(p, sa.Text, literal_execute=True) for p in path]
        return sa.func.jsonb_extract_path(body, *parts, type_=JSONB)

    def literal(self, value: Any) -> ColumnElement[Any]:
        return sa.cast(sa.literal(json_text(value), sa.Text), JSONB)

    def jtype(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.func.jsonb_typeof(x)

    def _scalar(self, x: ColumnElement[Any], kind: str, cast: Any) -> ColumnElement[Any]:
        text = x.op("#>>", return_type=sa.Text)(sa.literal_column("'{}'::text[]"))
        is_kind = sa.func.jsonb_typeof(x) == const(kind)
        return sa.case((is_kind, sa.cast(text, cast)), else_=None)

    def number(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        return self._scalar(x, "number", sa.Numeric)

    def string(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        return self._scalar(x, "string", sa.Text)

    def boolean(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        return self._scalar(x, "boolean", sa.Boolean)

    def equals(self, x: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
        return x == self.literal(value)

    def json_equal(self, x: ColumnElement[Any], y: ColumnElement[Any]) -> ColumnElement[bool]:
        return x == y  # jsonb equality is structural

    def fill_defaults(
        self,
        x: ColumnElement[Any],
        inner: Mapping[tuple[str, ...], Any],
        child: Callable[[str], ColumnElement[Any]],
    ) -> ColumnElement[Any]:
        filled = x
        for key in sorted({path[0] for path in inner}):
            # A key with a default is always set; one with defaults only deeper only when x
            # has it (jsonb_set is strict: a NULL value must not null the object).
            create = (key,) in inner
            value = child(key) if create else sa.func.coalesce(child(key), self.literal(None))
            path = sa.literal([key], postgresql.ARRAY(sa.Text))
            filled = sa.func.jsonb_set(filled, path, value, sa.literal(create), type_=JSONB)
        return sa.case((self.has_type(x, "object"), filled), else_=x)

    def json_string(self, text: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.func.to_jsonb(sa.cast(text, sa.Text), type_=JSONB)

    def raw_type(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.func.jsonb_typeof(x)

    def number_literal(self, value: int | float) -> ColumnElement[Any]:
        # A float as the decimal of its shortest text, which is how a stored JSON number
        # reads: a float parameter made PostgreSQL compare in double precision, so stored
        # integers beyond 2**53 were rounded (2**53 + 1 > 2.0**53 was false).
        return sa.literal(exact_number(value), sa.Numeric)

    def datetime_text(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        utc = sa.func.timezone("UTC", column)
        return sa.func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"', type_=sa.Text)

    def elements(self, x: ColumnElement[Any]) -> tuple[sa.Select[Any], ColumnElement[Any]]:
        array = sa.case((sa.func.jsonb_typeof(x) == "array", x), else_=None)
        each = sa.func.jsonb_array_elements(array).table_valued("value").alias("e")
        return sa.select(sa.literal(1)).select_from(each), each.c.value

    def regex(self, text: ColumnElement[Any], pattern: str, flags: str) -> ColumnElement[bool]:
        from datastore.query.regex import postgres

        # RE2's meaning as an ARE of explicit code point sets and anchors (query/regex.py).
        are = postgres(pattern, flags)
        return text.op("~", return_type=sa.Boolean)(sa.literal(are, sa.Text))

    def collate(self, text: ColumnElement[Any]) -> ColumnElement[Any]:
        return text.collate("C")

    def insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table)

    def for_update(self, query: sa.Select[Any], **options: Any) -> sa.Select[Any]:
        return query.with_for_update(**options)

    def lock_transaction(self, conn: Connection, key: int) -> None:
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.literal(key, sa.BigInteger))))

    def drop_index_unless_busy(self, conn: Connection, name: str, wait_ms: int) -> bool:
        try:
            with conn.begin_nested():
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(wait_ms)}")
                conn.execute(sa.text(f'DROP INDEX IF EXISTS "{name}"'))
                conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
        except sa.exc.OperationalError as exc:
            if "lock timeout" not in str(exc):
                raise
            return False
        return True

    def existing_indexes(self, conn: Connection, names: list[str]) -> set[str]:
        rows = conn.execute(
            sa.text(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
                " AND indexname = ANY(:names)"
            ),
            {"names": names},
        )
        return {row[0] for row in rows}

    def effective_body(self, documents: sa.Table, lineage: sa.Table) -> ColumnElement[Any]:
        ancestor = documents.alias("ancestor")
        entry = sa.func.jsonb_each(ancestor.c.body).table_valued("key", "value").alias("entry")
        own = sa.func.jsonb_each(documents.c.body).table_valued("key", "value").alias("own")
        chain = (
            sa.select(entry.c.key, entry.c.value, lineage.c.depth)
            .select_from(lineage)
            .join(ancestor, lineage_ancestor(ancestor, lineage))
            .join(entry, sa.true())
            .where(lineage_of_document(lineage, documents))
            .correlate(documents)
            .union_all(sa.select(own.c.key, own.c.value, sa.literal(0)).correlate(documents))
            .subquery("chain")
        )
        # Per key the last value aggregated wins: nulls first, then non-nulls from the
        # farthest ancestor to the document itself.
        merged = (
            sa.select(
                sa.func.jsonb_object_agg(
                    chain.c.key,
                    aggregate_order_by(
                        chain.c.value,
                        (sa.func.jsonb_typeof(chain.c.value) != "null").asc(),
                        chain.c.depth.desc(),
                    ),
                )
            )
            .correlate(documents)
            .scalar_subquery()
        )
        return sa.func.coalesce(merged, sa.cast(sa.literal("{}"), JSONB))
