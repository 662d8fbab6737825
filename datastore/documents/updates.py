"""PATCH bodies: update operators or plain top-level fields, applied to a stored body."""

from __future__ import annotations

from typing import Any

from datastore.errors import BadRequest, InvalidParam
from datastore.types import Document


def apply_patch(current: Document, patch: dict[str, Any]) -> Document:
    """The body after a PATCH: each given top-level field replaces the stored one.

    Raises BadRequest for update operators (not supported by this build).
    """
    operators = [key for key in patch if key.startswith("$")]
    if operators:
        raise BadRequest(
            "Update operators are not supported yet.",
            invalid_params=[InvalidParam(key, "is not supported") for key in operators],
        )
    return {**current, **patch}
