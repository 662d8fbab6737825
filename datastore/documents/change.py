"""What a write of one document stores, as the HTTP layer hands it to the service."""

from __future__ import annotations

from dataclasses import dataclass

from datastore.documents.sources import Claim
from datastore.types import Document


@dataclass(frozen=True)
class Change:
    """What a write stores: the body (source properties removed) and the ``$extends`` path
    (``extends_name`` is the property that carries it, for error messages)."""

    body: Document
    extends: str | None = None
    extends_name: str = "extends"
    claimed: tuple[Claim, ...] = ()
    """Read-only source properties the request carried: they must equal the stored
    document's (and so cannot be given on create)."""
