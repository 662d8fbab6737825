"""Switching a new SQLite file to WAL while another connection holds it (several workers
starting at once): retried while SQLite answers SQLITE_BUSY, raised at once otherwise."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from datastore.storage import engine


def test_the_switch_waits_for_a_writer_that_holds_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "WAL_RETRY_SECONDS", (0.05,) * 40)
    path = tmp_path / "busy.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    released = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    starter = sqlite3.connect(path, isolation_level=None, timeout=0, check_same_thread=False)
    try:
        with pytest.raises(sqlite3.OperationalError) as busy:
            starter.execute("PRAGMA journal_mode=WAL")
        assert busy.value.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
        released.start()
        engine._switch_to_wal(starter.cursor())
        assert starter.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        if released.ident is not None:  # started: a failure before it would hide behind join
            released.join()
        starter.close()
        holder.close()


class _Refusing:
    def __init__(self, code: int) -> None:
        self.code = code
        self.calls = 0

    def execute(self, sql: str) -> Any:
        self.calls += 1
        error = sqlite3.OperationalError("refused")
        error.sqlite_errorcode = self.code
        raise error


def test_other_errors_are_raised_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "WAL_RETRY_SECONDS", (0.0,) * 5)
    cursor = _Refusing(sqlite3.SQLITE_IOERR)
    with pytest.raises(sqlite3.OperationalError):
        engine._switch_to_wal(cursor)
    assert cursor.calls == 1


def test_busy_is_given_up_after_the_last_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "WAL_RETRY_SECONDS", (0.0,) * 5)
    cursor = _Refusing(sqlite3.SQLITE_BUSY | (2 << 8))  # an extended code of SQLITE_BUSY
    with pytest.raises(sqlite3.OperationalError):
        engine._switch_to_wal(cursor)
    assert cursor.calls == 6
