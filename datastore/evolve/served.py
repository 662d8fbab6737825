"""Remembering what ``serve`` served, and saying when it changed since the last start.

Each worker records its spaces' blueprints at start-up (``storage/served.py``: one read when
nothing changed; insert-if-absent by hash otherwise). The worker that records a change logs one
line with the changes since the previously served blueprint, counted by kind (breaking, data,
access, compatible). A database that cannot record (not migrated, read-only) is logged once
and does not stop the server.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from datastore.blueprint.loader import dump_yaml
from datastore.storage.engine import Database
from datastore.storage.served import ServedBlueprints, ServedRecord


def served_text(document: dict[str, Any]) -> str:
    """The text a served (bundled) blueprint is recorded as."""
    return dump_yaml(document)


def changes_since(previous: ServedRecord, text: str) -> str:
    """The changes from a recorded blueprint to ``text``, counted by kind."""
    from datastore.blueprint.diff import compare, summary
    from datastore.evolve.sources import load_from_text

    before = load_from_text(previous.text, f"database:{previous.space}@{previous.hash[:12]}")
    after = load_from_text(text, "served")
    return summary(compare(before, after))


def remember(
    db: Database, spaces: Iterable[tuple[str, dict[str, Any]]], logger: logging.Logger
) -> None:
    """Record each (space, bundled blueprint) as served; log one line per changed space."""
    store = ServedBlueprints(db)
    for space, document in spaces:
        text = served_text(document)
        try:
            changed, previous = store.record(space, text, datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001 - never stops the server; said once
            logger.warning(
                "datastore: could not record the served blueprint of space %s: %s",
                space,
                str(exc).splitlines()[0],
            )
            return
        if not changed or previous is None:
            continue
        try:
            counts = changes_since(previous, text)
        except Exception:  # noqa: BLE001 - an unreadable old text must not stop the server
            counts = "changes not counted"
        logger.warning(
            "datastore: the blueprint of space %s changed since it was last served (%s): %s "
            "(datastore diff --against-database lists them)",
            space,
            previous.last_served_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            counts,
        )
