"""Sets of code points as RE2 defines them, for translating RE2 patterns (``query/regex.py``).

A set is a tuple of disjoint, sorted, inclusive ``(lo, hi)`` ranges of Unicode scalar values
(surrogates and U+0000 are left out: no stored text can hold them). What RE2 means by a Unicode
class (``\\p{Greek}``) and by case folding is asked of RE2 itself, by matching it against every
code point, so the sets are RE2's own whatever Unicode version it was built with: a class once
per process and name (10-70 ms). The case-folding orbits take longer to find (~1.5 s), so
``casefold.py`` holds them for the google-re2 version it names (a test checks it against RE2);
under another version they are found at first use.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from functools import cache, lru_cache
from typing import Any

import re2  # type: ignore[import-untyped]

Ranges = tuple[tuple[int, int], ...]
MAX = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)

PERL: dict[str, Ranges] = {
    "d": ((0x30, 0x39),),
    "s": ((0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)),
    "w": ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)),
}
"""RE2's Perl classes ``\\d \\s \\w``: ASCII only (``\\s`` leaves out ``\\v``)."""

POSIX: dict[str, Ranges] = {
    "alnum": ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)),
    "alpha": ((0x41, 0x5A), (0x61, 0x7A)),
    "ascii": ((0x01, 0x7F),),
    "blank": ((0x09, 0x09), (0x20, 0x20)),
    "cntrl": ((0x01, 0x1F), (0x7F, 0x7F)),
    "digit": ((0x30, 0x39),),
    "graph": ((0x21, 0x7E),),
    "lower": ((0x61, 0x7A),),
    "print": ((0x20, 0x7E),),
    "punct": ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)),
    "space": ((0x09, 0x0D), (0x20, 0x20)),
    "upper": ((0x41, 0x5A),),
    "word": ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)),
    "xdigit": ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
}
"""RE2's ``[[:name:]]`` classes: ASCII only."""


def normalised(ranges: Iterable[tuple[int, int]]) -> Ranges:
    """Sorted, merged ranges without U+0000 and surrogates."""
    merged: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    out: list[tuple[int, int]] = []
    for lo, hi in merged:
        out.extend(_without((max(lo, 1), hi), _SURROGATES))
    return tuple(r for r in out if r[0] <= r[1])


def _without(span: tuple[int, int], gap: tuple[int, int]) -> list[tuple[int, int]]:
    lo, hi = span
    if hi < gap[0] or lo > gap[1]:
        return [span]
    return [r for r in ((lo, gap[0] - 1), (gap[1] + 1, hi)) if r[0] <= r[1]]


def union(*sets: Ranges) -> Ranges:
    """The code points in any of ``sets``."""
    return normalised(r for s in sets for r in s)


def complement(ranges: Ranges) -> Ranges:
    """Every code point not in ``ranges``."""
    out: list[tuple[int, int]] = []
    start = 0
    for lo, hi in ranges:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX:
        out.append((start, MAX))
    return normalised(out)


def size(ranges: Ranges) -> int:
    """How many code points ``ranges`` holds."""
    return sum(hi - lo + 1 for lo, hi in ranges)


def folded(ranges: Ranges) -> Ranges:
    """``ranges`` with every code point RE2's case folding makes equivalent to one of them."""
    keys, orbits = _orbits()
    extra: list[tuple[int, int]] = []
    for lo, hi in ranges:
        for index in range(bisect_left(keys, lo), bisect_right(keys, hi)):
            extra.extend((c, c) for c in orbits[keys[index]])
    return union(ranges, tuple(extra)) if extra else ranges


@lru_cache(maxsize=256)
def named(name: str) -> Ranges:
    """RE2's ``\\p{name}`` (raises ValueError for a name RE2 does not know)."""
    try:
        program = re2.compile(f"\\p{{{name}}}+", _options())
    except re2.error as exc:
        raise ValueError(str(exc)) from None
    return _runs(program)


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False
    return options


@cache
def _every_code_point() -> str:
    """Every code point but U+0000 and the surrogates, in order: the text sets are read from."""
    points = array("I", range(1, _SURROGATES[0]))
    points.extend(range(_SURROGATES[1] + 1, MAX + 1))
    return points.tobytes().decode("utf-32-le" if sys.byteorder == "little" else "utf-32-be")


def _code_point(index: int) -> int:
    """The code point at ``index`` of ``_every_code_point``."""
    code = index + 1
    return code if code < _SURROGATES[0] else code + (_SURROGATES[1] - _SURROGATES[0] + 1)


def _runs(program: Any, text: str | None = None) -> Ranges:
    """The code points of ``text`` (every code point by default) ``program`` matches, where
    ``program`` matches runs of single code points (``[...]+``)."""
    if text is None:
        return normalised(
            (_code_point(m.start()), _code_point(m.end() - 1))
            for m in program.finditer(_every_code_point())
        )
    return normalised(
        (ord(char), ord(char)) for m in program.finditer(text) for char in text[m.start() : m.end()]
    )


def as_re2_class(ranges: Ranges) -> str:
    """``ranges`` as an RE2 character class."""
    return "[" + "".join(f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in ranges) + "]"


@cache
def _orbits() -> tuple[list[int], dict[int, tuple[int, ...]]]:
    """RE2's case-folding orbits of more than one code point: (every member in order, each
    member's orbit). From ``casefold.py`` when it was written by the google-re2 installed, else
    found now (about a second, once per process)."""
    from datastore.query import casefold

    current = _re2_version() == casefold.RE2_VERSION
    found = casefold.orbits() if current else compute_orbits()
    orbits = {member: orbit for orbit in found for member in orbit}
    return sorted(orbits), orbits


def _re2_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("google-re2")
    except PackageNotFoundError:
        return ""


def compute_orbits() -> tuple[tuple[int, ...], ...]:
    """RE2's case-folding orbits of more than one code point, asked of RE2: found among the
    cased letters and numbers and the other symbols (circled letters), grown by RE2's own
    folding until nothing outside folds into them (an orbit with no member in those
    categories would be missed; Unicode has none)."""
    cased = named("Lu") + named("Ll") + named("Lt") + named("Lm") + named("Nl") + named("So")
    members = union(cased)
    while True:
        grown = _runs(re2.compile("(?i)" + as_re2_class(members) + "+", _options()))
        if grown == members:
            break
        members = grown
    text = "".join(chr(c) for c in _folding(_code_points(members)))
    orbits: dict[int, tuple[int, ...]] = {}
    for char in text:
        if ord(char) not in orbits:
            pattern = re2.compile(f"(?i)\\x{{{ord(char):X}}}", _options())
            orbit = tuple(sorted(ord(m.group()) for m in pattern.finditer(text)))
            orbits.update(dict.fromkeys(orbit, orbit))
    return tuple(sorted(set(orbits.values())))


def _code_points(ranges: Ranges) -> list[int]:
    return [c for lo, hi in ranges for c in range(lo, hi + 1)]


def _folding(points: list[int]) -> list[int]:
    """The code points of ``points`` that RE2's case folding makes equivalent to another of
    them: every such pair differs in some bit of their indexes, so for each bit the half whose
    bit is 1 is searched for what folds into the half whose bit is 0, and the other way."""
    found: set[int] = set()
    for bit in range(len(points).bit_length()):
        halves: tuple[list[int], list[int]] = ([], [])
        for index, point in enumerate(points):
            halves[(index >> bit) & 1].append(point)
        for source, target in (halves, halves[::-1]):
            if not source or not target:
                continue
            pattern = re2.compile("(?i)" + as_re2_class(normalised((c, c) for c in source)) + "+")
            text = "".join(map(chr, target))
            found.update(c for lo, hi in _runs(pattern, text) for c in range(lo, hi + 1))
    return sorted(found)


_CASEFOLD_HEAD = '''"""RE2's case-folding orbits (hexadecimal code points, ";" between orbits),
written by ``python -m datastore.query.charsets > datastore/query/casefold.py`` for the
google-re2 named here; under any other version ``charsets`` asks RE2 itself."""

from __future__ import annotations

RE2_VERSION = "{version}"
_ORBITS = (
{lines}
)


def orbits() -> tuple[tuple[int, ...], ...]:
    """Every orbit of more than one code point, each sorted."""
    return tuple(tuple(int(c, 16) for c in orbit.split()) for orbit in _ORBITS.split(";"))
'''


def write_casefold_module() -> str:
    """The text of ``casefold.py`` for the installed google-re2."""
    lines: list[str] = []
    line = ""
    for orbit in compute_orbits():
        text = " ".join(f"{c:X}" for c in orbit)
        if len(line) + len(text) > 88:
            lines.append(f'    "{line};"')
            line = ""
        line += (";" if line else "") + text
    lines.append(f'    "{line}"')
    return _CASEFOLD_HEAD.format(version=_re2_version(), lines="\n".join(lines))


if __name__ == "__main__":
    sys.stdout.write(write_casefold_module())
