"""Problems found in a blueprint, with where they are, and the ways to print them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem: the file it is in, 1-based line and column, severity, rule id, message."""

    file: str
    line: int
    column: int
    severity: Severity
    rule: str
    message: str

    def format_text(self) -> str:
        """``file:line:col: error: message [rule]``."""
        return (
            f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message} [{self.rule}]"
        )

    def format_github(self) -> str:
        """A GitHub Actions workflow annotation."""
        message = self.message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return (
            f"::{self.severity} file={self.file},line={self.line},col={self.column},"
            f"title={self.rule}::{message}"
        )


class BlueprintError(Exception):
    """A blueprint that cannot be served; carries every problem found."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics)
        super().__init__("\n".join(d.format_text() for d in self.diagnostics))


def format_diagnostics(diagnostics: Sequence[Diagnostic], fmt: str) -> str:
    """All diagnostics as ``text`` (one per line), ``json`` (an array) or ``github``."""
    ordered = sorted(diagnostics)
    if fmt == "json":
        return json.dumps([asdict(d) for d in ordered], indent=2)
    if fmt == "github":
        return "\n".join(d.format_github() for d in ordered)
    return "\n".join(d.format_text() for d in ordered)
