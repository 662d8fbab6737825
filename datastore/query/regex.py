"""Regular expressions clients send (``$regex``, ``name=/^po/i``), checked and run safely.

Patterns are compiled with RE2 (google-re2), which matches in linear time, so a "catastrophic"
pattern like ``(a+)+$`` cannot stall a worker; patterns RE2 does not support (backreferences,
lookaround) are refused with a 400 on every backend alike. SQLite's REGEXP function runs RE2;
PostgreSQL runs its own engine on the same (checked) pattern, bounded by the statement timeout.
The ``x`` flag (extended: whitespace and ``#`` comments ignored) is applied here, since RE2 lacks
it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2  # type: ignore[import-untyped]

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
MAX_PATTERN = 1000


def strip_extended(pattern: str) -> str:
    """The pattern with the ``x`` flag applied: unescaped whitespace outside ``[...]`` and
    ``#`` comments removed."""
    out: list[str] = []
    in_class = escaped = in_comment = False
    for char in pattern:
        if in_comment:
            in_comment = char != "\n"
            continue
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            out.append(char)
            escaped = True
        elif in_class:
            out.append(char)
            in_class = char != "]"
        elif char == "[":
            out.append(char)
            in_class = True
        elif char == "#":
            in_comment = True
        elif not char.isspace():
            out.append(char)
    return "".join(out)


def normalise(pattern: str, flags: str) -> str:
    """The pattern with its flags inline (``(?is)...``), ``x`` applied."""
    if "x" in flags:
        pattern = strip_extended(pattern)
    inline = "".join(f for f in "ims" if f in flags)
    return f"(?{inline}){pattern}" if inline else pattern


@lru_cache(maxsize=512)
def compiled(pattern: str) -> Any:
    """The RE2 program of a (normalised) pattern; raises ValueError when RE2 refuses it."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        raise ValueError(str(exc)) from None


def problem(pattern: str, flags: str = "") -> str | None:
    """Why a pattern cannot be used, or None."""
    if len(pattern) > MAX_PATTERN:
        return f"may be at most {MAX_PATTERN} characters long"
    try:
        compiled(normalise(pattern, flags))
    except ValueError as exc:
        return f"is not a supported regular expression ({exc})"
    return None


def search(pattern: str, value: str) -> bool:
    """Whether a normalised pattern matches somewhere in ``value`` (RE2, linear time)."""
    return compiled(pattern).search(value) is not None
