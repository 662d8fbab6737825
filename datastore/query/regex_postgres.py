"""RE2 patterns as PostgreSQL advanced regular expressions (AREs) that match the same strings.

PostgreSQL's engine reads the same text differently: ``\\b`` is a backspace there and a word
boundary in RE2, ``\\x52`` takes more hex digits, ``(?i)`` in mid-pattern is an error,
``\\pL`` is unknown, ``\\w`` and ``[[:alpha:]]`` follow the database locale where RE2's are
ASCII, and case-insensitive matching folds differently (RE2's ``(?i)k`` also matches the Kelvin
sign). So the pattern is parsed here as RE2 parses it and written out with nothing left to
interpretation:

* every character set (a literal, ``.``, ``[...]``, ``\\d``, ``\\pL``, ``[[:alpha:]]``), with
  RE2's case folding applied under ``i``, becomes an explicit set of code points
  (``charsets``), written as a bracket expression of ``\\uXXXX`` ranges, so no locale and no
  case-insensitive mode is involved;
* ``^ $ \\A \\z`` become string anchors or newline lookarounds (``m``), ``.`` excludes the
  newline unless ``s``, ``\\b \\B`` become lookarounds on RE2's ASCII word characters;
* groups become non-capturing, laziness is dropped (only whether a match exists is asked),
  counts past PostgreSQL's 255 are split.

The ARE runs in PostgreSQL's default mode (no newline sensitivity, case-sensitive). ``\\C``
(one byte of a character) is refused, as are groups nested past ``MAX_NESTING``; everything
else RE2 accepts translates. The caller has checked the pattern with RE2 first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from datastore.query import charsets
from datastore.query.charsets import Ranges

MAX_NESTING = 100
PG_MAX_COUNT = 255
_WORD = "[0-9A-Za-z_]"
_ESCAPES = {"a": 7, "f": 12, "t": 9, "n": 10, "r": 13, "v": 11}
_EVERYTHING = charsets.normalised([(1, charsets.MAX)])
_NOT_NEWLINE = charsets.complement(((10, 10),))


class Untranslatable(ValueError):
    """A construct RE2 accepts that is not served (the message says which)."""


@dataclass(frozen=True)
class _Flags:
    fold: bool = False
    multiline: bool = False
    dotall: bool = False


@dataclass(frozen=True)
class _Piece:
    """A translated part of a pattern; ``empty`` when it only asserts (matches no text)."""

    text: str
    empty: bool = False


@lru_cache(maxsize=512)
def translate(pattern: str, flags: str = "") -> str:
    """The ARE of an RE2 ``pattern`` (RE2 has accepted it) under the flags ``i``, ``m``,
    ``s``; raises Untranslatable."""
    start = _Flags(fold="i" in flags, multiline="m" in flags, dotall="s" in flags)
    return _Translator(pattern, start).run()


class _Translator:
    def __init__(self, pattern: str, flags: _Flags) -> None:
        self.text = pattern
        self.pos = 0
        self.flags = flags
        self.depth = 0

    def run(self) -> str:
        piece = self.alternation()
        if self.pos != len(self.text):
            raise Untranslatable(f"unexpected {self.peek()!r} at {self.pos + 1}")
        return piece.text or "(?:)"

    # -- reading ----------------------------------------------------------------------------

    def peek(self, offset: int = 0) -> str:
        at = self.pos + offset
        return self.text[at] if at < len(self.text) else ""

    def take(self, count: int = 1) -> str:
        taken = self.text[self.pos : self.pos + count]
        self.pos += count
        return taken

    def startswith(self, prefix: str) -> bool:
        return self.text.startswith(prefix, self.pos)

    # -- structure --------------------------------------------------------------------------

    def alternation(self) -> _Piece:
        branches = [self.concatenation()]
        while self.peek() == "|":
            self.take()
            branches.append(self.concatenation())
        if len(branches) == 1:
            return branches[0]
        text = "|".join(b.text or "(?:)" for b in branches)
        return _Piece(f"(?:{text})", all(b.empty for b in branches))

    def concatenation(self) -> _Piece:
        pieces: list[_Piece] = []
        while self.peek() not in ("", "|", ")"):
            if self.startswith("\\Q"):
                pieces.extend(self.quoted())
            else:
                atom = self.atom()
                if atom is not None:
                    pieces.append(atom)
            # A repetition takes the last piece RE2 pushed: the last character of \Q...\E,
            # or what came before an empty \Q\E or a (?flags), even a repetition.
            if pieces:
                pieces[-1] = self.repeated(pieces[-1])
        return _Piece("".join(p.text for p in pieces), all(p.empty for p in pieces))

    def repeated(self, atom: _Piece) -> _Piece:
        counts = self.repetition()
        if counts is None:
            return atom
        if self.peek() == "?":
            self.take()  # lazy or greedy, a match exists alike
        low, high = counts
        if atom.empty:  # an assertion holds once or any number of times alike
            return atom if low > 0 else _Piece("", empty=True)
        return _Piece(_repeat(atom.text or "(?:)", low, high))

    def repetition(self) -> tuple[int, int | None] | None:
        char = self.peek()
        if char in "*+?" and char:
            self.take()
            return {"*": (0, None), "+": (1, None), "?": (0, 1)}[char]
        if char != "{":
            return None
        close = self.text.find("}", self.pos)
        body = self.text[self.pos + 1 : close] if close > 0 else ""
        low, comma, high = body.partition(",")
        if not (low + high).isascii() or not low.isdigit() or not (high == "" or high.isdigit()):
            return None  # RE2 reads such a "{" as a literal
        self.pos = close + 1
        return int(low), (int(high) if high else None) if comma else int(low)

    def atom(self) -> _Piece | None:
        char = self.peek()
        if char == "(":
            return self.group()
        if char == "[":
            return self.chars(self.bracket(), fold=False)  # each item folded as RE2 does
        if char == "\\":
            return self.escape()
        self.take()
        if char == "^":
            return _Piece("(?:^|(?<=\\n))" if self.flags.multiline else "^", empty=True)
        if char == "$":
            return _Piece("(?:$|(?=\\n))" if self.flags.multiline else "$", empty=True)
        if char == ".":
            return self.chars(_EVERYTHING if self.flags.dotall else _NOT_NEWLINE, fold=False)
        return self.literal(ord(char))

    def group(self) -> _Piece | None:
        self.take()
        saved = self.flags
        if self.startswith("?"):
            if self.startswith("?P<") or (self.startswith("?<") and self.peek(2) not in "=!"):
                self.pos = self.text.index(">", self.pos) + 1  # a named group
            else:
                scoped = self.flag_group()
                if not scoped:
                    return None  # (?flags) sets them for the rest of the enclosing group
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise Untranslatable(f"groups may be nested at most {MAX_NESTING} deep")
        inner = self.alternation()
        self.depth -= 1
        if self.take() != ")":
            raise Untranslatable("missing )")
        self.flags = saved
        return _Piece(f"(?:{inner.text})", inner.empty)

    def flag_group(self) -> bool:
        """Read ``?flags)`` or ``?flags:`` (after the parenthesis); True when scoped."""
        self.take()
        on = True
        flags = self.flags
        while True:
            char = self.take()
            if char == "-":
                on = False
            elif char == "i":
                flags = replace(flags, fold=on)
            elif char == "m":
                flags = replace(flags, multiline=on)
            elif char == "s":
                flags = replace(flags, dotall=on)
            elif char == "U":
                pass  # greediness: a match exists alike
            elif char in (")", ":"):
                self.flags = flags
                return char == ":"
            else:
                raise Untranslatable(f"unknown group flag {char!r}")

    # -- escapes ----------------------------------------------------------------------------

    def escape(self) -> _Piece:
        letter = self.peek(1)
        assertions = {
            "A": "^",
            "z": "$",
            "b": f"(?:(?<={_WORD})(?!{_WORD})|(?<!{_WORD})(?={_WORD}))",
            "B": f"(?:(?<={_WORD})(?={_WORD})|(?<!{_WORD})(?!{_WORD}))",
        }
        if letter in assertions and letter:
            self.take(2)
            return _Piece(assertions[letter], empty=True)
        if letter == "C":
            raise Untranslatable("\\C (one byte of a character) is not supported")
        named = self.class_escape()
        if named is not None:
            return self.chars(named, fold=False)
        return self.literal(self.char_escape())

    def quoted(self) -> list[_Piece]:
        """``\\Q...\\E``: literal characters up to ``\\E`` or the end (one piece each)."""
        self.take(2)
        end = self.text.find("\\E", self.pos)
        end = len(self.text) if end < 0 else end
        literals = [self.literal(ord(c)) for c in self.text[self.pos : end]]
        self.pos = min(end + 2, len(self.text))
        return literals

    def class_escape(self) -> Ranges | None:
        """``\\d \\s \\w`` (and negations) or ``\\pN \\p{Name}`` (and negations) with the
        current folding applied, or None when the escape is no class."""
        letter = self.peek(1)
        if letter.lower() in charsets.PERL and letter:
            self.take(2)
            return self._item(charsets.PERL[letter.lower()], negated=letter.isupper())
        if letter not in ("p", "P") or not letter:
            return None
        self.take(2)
        negated = letter == "P"
        if self.peek() == "{":
            name = self.text[self.pos + 1 : self.text.index("}", self.pos)]
            self.pos += len(name) + 2
        else:
            name = self.take()
        if name.startswith("^"):
            negated, name = not negated, name[1:]
        return self._item(_everything() if name == "Any" else charsets.named(name), negated)

    def _item(self, positive: Ranges, negated: bool) -> Ranges:
        """A class item as RE2 adds it: folded under ``i``, then negated."""
        folded = charsets.folded(positive) if self.flags.fold else positive
        return charsets.complement(folded) if negated else folded

    def char_escape(self) -> int:
        """The code point of a one-character escape: octal, ``\\x``, ``\\n``-style or a
        punctuation character."""
        self.take()
        char = self.take()
        if char in "01234567" and char:
            digits = char
            while len(digits) < 3 and self.peek() in "01234567" and self.peek():
                digits += self.take()
            return int(digits, 8)
        if char == "x":
            if self.peek() == "{":
                close = self.text.index("}", self.pos)
                code = int(self.text[self.pos + 1 : close], 16)
                self.pos = close + 1
                return code
            return int(self.take(2), 16)
        if char in _ESCAPES:
            return _ESCAPES[char]
        return ord(char)

    # -- classes ----------------------------------------------------------------------------

    def bracket(self) -> Ranges:
        """``[...]``: the union of its items, each folded under ``i``, then negated for
        ``[^...]``."""
        self.take()
        negated = self.peek() == "^"
        if negated:
            self.take()
        items: list[Ranges] = []
        first = True
        while first or self.peek() != "]":
            if not self.peek():
                raise Untranslatable("missing ]")
            first = False
            items.append(self.bracket_item())
        self.take()
        result = charsets.union(*items)
        return charsets.complement(result) if negated else result

    def bracket_item(self) -> Ranges:
        if self.startswith("[:"):
            close = self.text.find(":]", self.pos + 2)
            name = self.text[self.pos + 2 : close] if close > 0 else ""
            if name.lstrip("^") in charsets.POSIX:
                self.pos = close + 2
                return self._item(charsets.POSIX[name.lstrip("^")], name.startswith("^"))
        if self.peek() == "\\":
            named = self.class_escape()
            if named is not None:
                return named
        low = self.bracket_char()
        high = low
        if self.peek() == "-" and self.peek(1) not in ("]", ""):
            self.take()
            high = self.bracket_char()
        return self._item(charsets.normalised([(low, high)]), negated=False)

    def bracket_char(self) -> int:
        return self.char_escape() if self.peek() == "\\" else ord(self.take())

    # -- output -----------------------------------------------------------------------------

    def literal(self, code: int) -> _Piece:
        return self.chars(charsets.normalised([(code, code)]))

    def chars(self, ranges: Ranges, *, fold: bool = True) -> _Piece:
        """A set of code points as an ARE (folded under ``i`` unless already done)."""
        if fold and self.flags.fold:
            ranges = charsets.folded(ranges)
        return _Piece(_bracket(ranges))


def _everything() -> Ranges:
    return _EVERYTHING


def _bracket(ranges: Ranges) -> str:
    """A set of code points as an ARE: a character, a bracket expression of ranges (or of the
    ranges it leaves out, when shorter), or a pattern that matches nothing."""
    if not ranges:
        return "(?!)"
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _char(ranges[0][0])
    if ranges == _EVERYTHING:
        return "."
    outside = charsets.complement(ranges)
    if len(outside) < len(ranges):
        return "[^" + "".join(map(_range, outside)) + "]"
    return "[" + "".join(map(_range, ranges)) + "]"


def _range(span: tuple[int, int]) -> str:
    low, high = span
    return _char(low) if low == high else f"{_char(low)}-{_char(high)}"


def _char(code: int) -> str:
    """One code point written so that an ARE reads it literally, in or out of brackets."""
    char = chr(code)
    if char.isascii() and char.isalnum():
        return char
    return f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"


def _repeat(text: str, low: int, high: int | None) -> str:
    """``text`` repeated ``low`` to ``high`` (None: unbounded) times, in counts of at most
    255 (PostgreSQL's limit; RE2 allows 1000)."""
    atom = f"(?:{text})"
    if high is None:
        return _repeat(text, low, low) + f"{atom}*" if low > PG_MAX_COUNT else f"{atom}{{{low},}}"
    if high <= PG_MAX_COUNT:
        return f"{atom}{{{low},{high}}}" if low != high else f"{atom}{{{low}}}"
    required = [f"{atom}{{{count}}}" for count in _chunks(low)]
    optional = [f"{atom}{{0,{count}}}" for count in _chunks(high - low)]
    return "".join(required + optional)


def _chunks(total: int) -> list[int]:
    whole, rest = divmod(total, PG_MAX_COUNT)
    return [PG_MAX_COUNT] * whole + ([rest] if rest else [])
