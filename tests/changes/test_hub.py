"""The per-worker hub: the recent changes it keeps, and what it leaves to the log."""

from __future__ import annotations

import asyncio

import pytest

from datastore.changes import hub
from datastore.changes.service import ChangeService
from datastore.config import Settings
from datastore.documents.change import Change
from datastore.documents.service import DocumentService
from datastore.storage.engine import Database


def test_a_burst_larger_than_the_buffer_is_left_to_the_log(
    database: Database, space: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub, "BUFFER", 3)
    service = DocumentService(database, space)
    for i in range(10):
        asyncio.run(service.create("c", str(i), Change({"n": i})))
    loaded = hub.load(database, {space: 0})
    deliveries, skipped = loaded[space]
    assert skipped and [d.seq for d in deliveries] == [8, 9, 10]
    assert [d.document.body for d in deliveries if d.document] == [{"n": 7}, {"n": 8}, {"n": 9}]
    recent = hub.SpaceLog(0)
    recent.extend(deliveries, skipped=True)
    assert recent.since(0) is None  # older than the buffer: read from the log
    assert [d.seq for d in recent.since(8) or []] == [9, 10]
    assert recent.since(10) == []

    async def follow() -> list[int]:
        feed = ChangeService(database, Settings())
        batch = await feed.next_batch(space, "c", 0, 100, 0)
        feed.close()
        return [d.seq for d in batch.deliveries]

    assert asyncio.run(follow()) == list(range(1, 11))
