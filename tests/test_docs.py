"""The documentation covers what exists: commands, guides linked, example blueprints."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_every_command_is_documented() -> None:
    from datastore.cli import _parser

    commands = _parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    text = (DOCS / "cli.md").read_text()
    for name in commands:
        assert f"datastore {name}" in text, name


def test_links_between_documents_resolve() -> None:
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#]+?\.(?:md|yaml))\)", page.read_text()):
            if target.startswith("http"):
                continue
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_every_example_blueprint_is_documented() -> None:
    text = (DOCS / "blueprints.md").read_text()
    for path in (ROOT / "blueprints").glob("*.yaml"):
        assert path.name in text, path.name
