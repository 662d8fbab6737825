"""Regular expressions clients send (``$regex``, ``name=/^po/i``), checked and run safely.

The syntax and the meaning are RE2's (google-re2), on both backends: RE2 matches in linear time,
so a "catastrophic" pattern like ``(a+)+$`` cannot stall a worker, and patterns RE2 does not
support (backreferences, lookaround) are refused with a 400 on every backend alike. SQLite's
REGEXP function runs RE2 itself; PostgreSQL runs the pattern translated into an equivalent ARE
(``regex_postgres.py``), bounded by the statement timeout. A pattern is accepted only when both
hold (RE2 compiles it and it translates), so both backends accept the same patterns. The ``x``
flag (extended: whitespace and ``#`` comments ignored) is applied here, since RE2 lacks it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2  # type: ignore[import-untyped]

from datastore.query.regex_postgres import translate

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
        reason = exc.args[0] if exc.args else ""
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        raise ValueError(text) from None


def problem(pattern: str, flags: str = "") -> str | None:
    """Why a pattern cannot be used (on either backend), or None."""
    if len(pattern) > MAX_PATTERN:
        return f"may be at most {MAX_PATTERN} characters long"
    try:
        compiled(normalise(pattern, flags))
        postgres(pattern, flags)
    except ValueError as exc:
        return f"is not a supported regular expression ({exc})"
    return None


def postgres(pattern: str, flags: str = "") -> str:
    """The PostgreSQL ARE that matches what RE2 matches with ``pattern`` and ``flags``
    (i, m, s, x); raises ValueError for the constructs that are not served."""
    if "x" in flags:
        pattern = strip_extended(pattern)
    return translate(pattern, "".join(f for f in "ims" if f in flags))


@lru_cache(maxsize=512)
def _searcher(pattern: str) -> Any:
    """The RE2 program that finds a (normalised) pattern starting where a character starts.
    RE2 runs on UTF-8 bytes, and its own search may start a match inside a multibyte
    character, where ``\\B`` holds between two of its bytes: ``\\B`` matched "1\\u00a01",
    which has a word boundary at every character boundary. Matched from the start after
    ``(?s:.)*?``, which steps over whole characters, a match starts only between characters,
    as PostgreSQL's engine reads the translated pattern."""
    compiled(pattern)  # refused as RE2 refuses it, before the wrapping could balance it
    return compiled(f"(?s:.)*?(?:{pattern})")


def search(pattern: str, value: str) -> bool:
    """Whether a normalised pattern matches somewhere in ``value`` (RE2, linear time)."""
    return _searcher(pattern).match(value) is not None
