"""Where ``datastore diff`` collects its changes, each located in OLD or NEW."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from datastore.blueprint.diff.changes import Change, ChangeKind, Direction
from datastore.blueprint.loader import LoadedBlueprint, Pointer

Side = Literal["old", "new"]


class Recorder:
    """The two blueprints compared and the changes found so far."""

    def __init__(self, old: LoadedBlueprint, new: LoadedBlueprint) -> None:
        self.old = old
        self.new = new
        self.changes: list[Change] = []

    def add(
        self,
        side: Side,
        pointer: Sequence[str | int],
        kind: ChangeKind,
        rule: str,
        message: str,
        *,
        direction: Direction = "",
        old: str | None = None,
        new: str | None = None,
    ) -> None:
        """One change, located at ``pointer`` in the ``side`` blueprint."""
        file, line, column = (self.old if side == "old" else self.new).locate(pointer)
        self.changes.append(Change(file, line, column, kind, rule, message, direction, old, new))

    def narrowed(self, pointer: Pointer, rule: str, message: str, users: frozenset[str]) -> None:
        """A narrowing in NEW: breaking, and a data change when stored documents of ``users``
        (collections) are validated against or shown through the schema."""
        self.add("new", pointer, "breaking", rule, message)
        if users:
            self.add(
                "new",
                pointer,
                "data",
                rule,
                f"{message}: stored documents of {', '.join(sorted(users))} may not satisfy it "
                "(datastore check-data lists them)",
            )
