"""The changes ``datastore diff`` reports: the record, whether they fail a run, the summary
and the output formats (``text``, ``json``, ``github``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

ChangeKind = Literal["breaking", "data", "access", "compatible"]
Direction = Literal["tightened", "loosened", "changed", ""]
FAIL_LEVELS = ("breaking", "any", "none")


@dataclass(frozen=True, order=True)
class Change:
    """One change: where (in NEW, or OLD for removals), its kind, rule id and message."""

    file: str
    line: int
    column: int
    kind: ChangeKind
    rule: str
    message: str
    direction: Direction = ""
    old: str | None = None
    new: str | None = None

    @property
    def label(self) -> str:
        """``breaking``, ``data``, ``access tightened``... as printed."""
        return f"access {self.direction}" if self.kind == "access" else self.kind

    @property
    def breaking(self) -> bool:
        """Whether ``--fail-on breaking`` fails on it (a loosened rule and additions do not)."""
        return self.kind in ("breaking", "data") or (
            self.kind == "access" and self.direction != "loosened"
        )


def fails(changes: Sequence[Change], fail_on: str) -> bool:
    """Whether ``changes`` reach ``fail_on`` (``breaking``, ``any`` or ``none``)."""
    if fail_on == "none":
        return False
    if fail_on == "any":
        return bool(changes)
    return any(c.breaking for c in changes)


def summary(changes: Sequence[Change]) -> str:
    """``2 breaking, 1 data, 1 access (1 tightened), 3 compatible``."""
    counts = {k: sum(1 for c in changes if c.kind == k) for k in ("breaking", "data", "access")}
    access = [c.direction for c in changes if c.kind == "access"]
    parts = [f"{counts['breaking']} breaking", f"{counts['data']} data"]
    detail = ", ".join(
        f"{access.count(d)} {d}" for d in ("tightened", "loosened", "changed") if d in access
    )
    parts.append(f"{counts['access']} access" + (f" ({detail})" if detail else ""))
    parts.append(f"{sum(1 for c in changes if c.kind == 'compatible')} compatible")
    return ", ".join(parts)


def format_changes(changes: Sequence[Change], fmt: str) -> str:
    """Every change as ``text`` (one per line and a summary), ``json`` or ``github``."""
    ordered = sorted(changes)
    if fmt == "json":
        return json.dumps([asdict(c) for c in ordered], indent=2, ensure_ascii=False)
    if fmt == "github":
        return "\n".join(_github(c) for c in ordered)
    lines = [f"{c.file}:{c.line}:{c.column}: {c.label}: {c.message} [{c.rule}]" for c in ordered]
    lines.append(summary(ordered) if ordered else "no changes")
    return "\n".join(lines)


def _github(change: Change) -> str:
    """A GitHub Actions workflow command: an annotation on the file and line."""
    level = "error" if change.breaking else "notice" if change.kind == "compatible" else "warning"
    message = f"{change.label}: {change.message}"
    message = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    file = change.file.split(":", 2)[-1] if change.file.startswith("git:") else change.file
    return (
        f"::{level} file={file},line={change.line},col={change.column},"
        f"title=datastore diff [{change.rule}]::{message}"
    )
