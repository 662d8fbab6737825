"""Comparing two blueprints: every change, classified, with where it is (``datastore diff``).

Four kinds of change (docs/evolving.md):

- ``breaking``: breaks clients — a collection, path, operation, property, parameter or response
  removed; a property or parameter becomes required; a type, ``enum``, ``pattern``, ``format``,
  bound or length narrowed; ``additionalProperties`` closed; a source mapping changed; a path
  renamed.
- ``data``: the same narrowings seen from the stored documents' side, for schemas the
  documents of a collection are validated against or shown through (documents written before
  may not satisfy them: ``datastore check-data`` tells), a removed or renamed collection (its
  documents become orphans), and a changed ``default`` (documents relying on it show another
  value).
- ``access``: an ``x-datastore-acl`` rule (or ``security``) changed, old → new, ``tightened``,
  ``loosened`` or ``changed`` when that cannot be decided (decided: ``public`` to anything and
  back, a rule added to or removed from an operation protected by ``security``, an added or
  removed ``&&`` term, an added or removed ``||`` term).
- ``compatible``: additions and widenings.

Schemas are compared where they are written: ``components/schemas`` by name (each once), and
each operation's inline schemas; a slot whose ``$ref`` is the same on both sides is left to the
component comparison, a changed ``$ref`` is followed on both sides. Annotations (``title``,
``description``, ``example``...) are not changes. Locations are in NEW, or in OLD for removals.

The modules: ``changes`` (the Change record, fail levels, summary, formats), ``record`` (the
Recorder changes are located and collected in), ``nodes`` (pointers, ``$ref`` chains, JSON
bodies), ``endpoints`` (operations by path shape; which collections a schema describes),
``paths`` (paths, renames, collections), ``operations`` (parameters, request bodies,
responses), ``access`` (rules and ``security``), ``schemas`` (the walk through schemas),
``keywords`` and ``structure`` (what one schema's keywords say).
"""

from __future__ import annotations

from datastore.blueprint.diff.access import acl_direction
from datastore.blueprint.diff.changes import (
    FAIL_LEVELS,
    Change,
    ChangeKind,
    Direction,
    fails,
    format_changes,
    summary,
)
from datastore.blueprint.diff.endpoints import component_users, document_schema_slots
from datastore.blueprint.diff.keywords import SOURCE_KEY
from datastore.blueprint.diff.operations import OperationComparison
from datastore.blueprint.diff.paths import PathComparison
from datastore.blueprint.diff.record import Recorder
from datastore.blueprint.diff.schemas import SchemaComparison
from datastore.blueprint.loader import LoadedBlueprint


def compare(old: LoadedBlueprint, new: LoadedBlueprint) -> list[Change]:
    """Every change from ``old`` to ``new``, sorted by location."""
    rec = Recorder(old, new)
    schemas = SchemaComparison(rec)
    PathComparison(rec, OperationComparison(rec, schemas)).run()
    schemas.components(component_users(new.document))
    return sorted(rec.changes)


__all__ = [
    "FAIL_LEVELS",
    "SOURCE_KEY",
    "Change",
    "ChangeKind",
    "Direction",
    "acl_direction",
    "compare",
    "document_schema_slots",
    "fails",
    "format_changes",
    "summary",
]
