"""Which files are blueprints: those that declare ``openapi:`` (or ``swagger:``, which the
linter then refuses with its own message). ``datastore lint`` skips the others, so a hook that
passes every YAML file of a repository (CI workflows, compose files) checks only blueprints."""

from __future__ import annotations

import re
from pathlib import Path

_YAML_KEY = re.compile(r"""^["']?(?:openapi|swagger)["']?[ \t]*:""", re.M)
_JSON_KEY = re.compile(r'"(?:openapi|swagger)"\s*:')


def declares_openapi(path: str | Path) -> bool:
    """Whether the file has a top-level ``openapi`` (or ``swagger``) key; a file that cannot
    be read counts as a blueprint, so that linting it reports why."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True
    if text.lstrip().startswith("{"):
        return _JSON_KEY.search(text) is not None
    return _YAML_KEY.search(text) is not None
