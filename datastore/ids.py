"""Document ids and collection names: generation and the rules they must follow (read by the
services that check them and by the published contract that states them).

Generated ids are UUID version 7 strings: standard UUID text, unique, and sortable by creation
time (48-bit millisecond timestamp, then random bits).
"""

from __future__ import annotations

import os
import re
import time
import uuid

from datastore.errors import BadRequest, InvalidParam

MAX_ID_LENGTH = 255
_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def generate_id() -> str:
    """A new UUIDv7 string."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 68) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b
    return str(uuid.UUID(int=value))


def id_problem(doc_id: object) -> str | None:
    """Why ``doc_id`` cannot be a document id, or None when it can."""
    if not isinstance(doc_id, str):
        return "must be a string"
    if not doc_id:
        return "must not be empty"
    if len(doc_id) > MAX_ID_LENGTH:
        return f"must be at most {MAX_ID_LENGTH} characters long"
    if doc_id in (".", ".."):
        return "must not be . or .."
    if "/" in doc_id:
        return "must not contain /"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in doc_id):
        return "must not contain control characters"
    return None


def check_id(doc_id: object, name: str = "id") -> str:
    """``doc_id`` if it is a valid document id; raises BadRequest naming ``name`` otherwise."""
    problem = id_problem(doc_id)
    if problem is not None:
        raise BadRequest(
            "The document id is not valid.", invalid_params=[InvalidParam(name, problem)]
        )
    assert isinstance(doc_id, str)
    return doc_id


def check_collection_name(name: str, param: str = "collection") -> str:
    """``name`` if it may name a dynamic collection; raises BadRequest otherwise."""
    if not _COLLECTION_NAME.fullmatch(name):
        raise BadRequest(
            "The collection name is not valid.",
            invalid_params=[
                InvalidParam(
                    param,
                    "must start with a letter or digit and contain only letters, digits, "
                    "'_', '-' and '.' (at most 128 characters)",
                )
            ],
        )
    return name
