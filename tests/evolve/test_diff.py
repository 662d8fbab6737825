"""``datastore diff``: one blueprint pair per rule, each asserting the classification and the
location (file:line:col in NEW, or in OLD for removals)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from datastore.blueprint.diff import Change, acl_direction, compare, fails, format_changes
from datastore.blueprint.loader import load_blueprint
from datastore.evolve.sources import load_from_git, load_from_text

BASE = """\
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /events:
    get:
      x-datastore-acl: public
      parameters:
        - {name: q, in: query, schema: {type: string}}
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema:
                type: array
                items: {$ref: '#/components/schemas/event'}
    post:
      x-datastore-acl: jwt.sub === 'a' || jwt.role === 'admin'
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/event'}
      responses:
        '201': {description: created}
  /events/{id}:
    get:
      x-datastore-acl: jwt.sub === 'a'
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {$ref: '#/components/schemas/event'}
  /notes:
    get:
      x-datastore-acl: public
      responses: {'200': {description: ok}}
components:
  schemas:
    event:
      type: object
      properties:
        name: {type: string, maxLength: 100}
        kind: {type: string, enum: [a, b]}
        size: {type: number, minimum: 0}
        code: {type: string}
        owner: {type: string, x-datastore-source: document.$id}
      required: [name]
"""


def at(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based (line, column) of the n-th occurrence of ``needle`` in ``text``."""
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def changed(tmp_path: Path, old: str, new: str) -> list[Change]:
    (tmp_path / "old.yaml").write_text(old)
    (tmp_path / "new.yaml").write_text(new)
    return compare(load_blueprint(tmp_path / "old.yaml"), load_blueprint(tmp_path / "new.yaml"))


def edit(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def found(changes: list[Change], kind: str, rule: str, where: tuple[str, int, int]) -> Change:
    """The one change of ``kind`` and ``rule`` at ``where`` (file suffix, line, column)."""
    matches = [
        c
        for c in changes
        if (c.kind, c.rule) == (kind, rule)
        and c.file.endswith(where[0])
        and (c.line, c.column) == where[1:]
    ]
    assert len(matches) == 1, "\n" + format_changes(changes, "text")
    return matches[0]


def test_the_same_blueprint_has_no_changes(tmp_path: Path) -> None:
    assert changed(tmp_path, BASE, BASE) == []


# -- breaking for clients (and, for document schemas, for stored data) ---------------------


def test_a_removed_collection_breaks_clients_and_orphans_its_documents(tmp_path: Path) -> None:
    new = edit(
        "  /notes:\n    get:\n      x-datastore-acl: public\n"
        "      responses: {'200': {description: ok}}\n",
        "",
    )
    changes = changed(tmp_path, BASE, new)
    where = ("old.yaml", *at(BASE, "/notes:"))
    found(changes, "breaking", "collection-removed", where)
    assert "orphans" in found(changes, "data", "collection-removed", where).message
    found(changes, "breaking", "path-removed", where)


def test_a_removed_operation(tmp_path: Path) -> None:
    start = BASE.index("    post:")
    new = BASE[:start] + BASE[BASE.index("  /events/{id}:") :]
    changes = changed(tmp_path, BASE, new)
    found(changes, "breaking", "operation-removed", ("old.yaml", *at(BASE, "post:")))


def test_a_removed_property(tmp_path: Path) -> None:
    changes = changed(tmp_path, BASE, edit("        code: {type: string}\n", ""))
    change = found(changes, "breaking", "property-removed", ("old.yaml", *at(BASE, "code:")))
    assert "schema event: property code removed" in change.message
    assert not [c for c in changes if c.kind == "data"]  # additionalProperties is open


def test_a_removed_property_of_a_closed_schema_is_a_data_change(tmp_path: Path) -> None:
    closed = edit(
        "      required: [name]\n", "      required: [name]\n      additionalProperties: false\n"
    )
    changes = changed(tmp_path, closed, closed.replace("        code: {type: string}\n", ""))
    found(changes, "data", "property-removed", ("old.yaml", *at(closed, "code:")))


def test_a_removed_parameter(tmp_path: Path) -> None:
    new = edit("      parameters:\n        - {name: q, in: query, schema: {type: string}}\n", "")
    changes = changed(tmp_path, BASE, new)
    found(changes, "breaking", "parameter-removed", ("old.yaml", *at(BASE, "{name: q")))


def test_a_removed_response(tmp_path: Path) -> None:
    new = edit("        '201': {description: created}", "        '202': {description: later}")
    changes = changed(tmp_path, BASE, new)
    found(changes, "breaking", "response-removed", ("old.yaml", *at(BASE, "'201'")))
    found(changes, "compatible", "response-added", ("new.yaml", *at(new, "'202'")))


def test_a_property_becomes_required(tmp_path: Path) -> None:
    new = edit("required: [name]", "required: [name, kind]")
    changes = changed(tmp_path, BASE, new)
    where = ("new.yaml", *at(new, "kind]"))
    found(changes, "breaking", "property-required", where)
    data = found(changes, "data", "property-required", where)
    assert "/events" in data.message
    assert "check-data" in data.message


def test_a_new_required_property(tmp_path: Path) -> None:
    new = edit(
        "      required: [name]", "        venue: {type: string}\n      required: [name, venue]"
    )
    changes = changed(tmp_path, BASE, new)
    change = found(changes, "breaking", "property-required", ("new.yaml", *at(new, "venue]")))
    assert "new property venue" in change.message
    assert not [c for c in changes if c.rule == "property-added"]


@pytest.mark.parametrize(
    ("old", "new", "rule", "needle"),
    [
        ("size: {type: number,", "size: {type: integer,", "type-narrowed", "integer"),
        ("code: {type: string}", "code: {type: [string, number]}", "type-narrowed", None),
        ("enum: [a, b]", "enum: [a]", "enum-narrowed", "[a]"),
        ("code: {type: string}", "code: {type: string, enum: [x]}", "enum-narrowed", "[x]"),
        (
            "code: {type: string}",
            "code: {type: string, pattern: '^x'}",
            "pattern-narrowed",
            "'^x'",
        ),
        ("code: {type: string}", "code: {type: string, format: date}", "format-narrowed", "date}"),
        ("minimum: 0", "minimum: 1", "bound-narrowed", "1}"),
        ("size: {type: number,", "size: {type: number, maximum: 9,", "bound-narrowed", "9,"),
        ("maxLength: 100", "maxLength: 50", "bound-narrowed", "50}"),
        (
            "      required: [name]\n",
            "      required: [name]\n      additionalProperties: false\n",
            "additional-properties-closed",
            "false",
        ),
    ],
)
def test_narrowings_break_clients_and_stored_data(
    tmp_path: Path, old: str, new: str, rule: str, needle: str | None
) -> None:
    after = edit(old, new)
    changes = changed(tmp_path, BASE, after)
    if needle is None:  # a widening: compatible only
        assert [c.kind for c in changes] == ["compatible"]
        assert changes[0].rule == "type-widened"
        return
    where = ("new.yaml", *at(after, needle))
    found(changes, "breaking", rule, where)
    found(changes, "data", rule, where)


def test_a_changed_source_mapping(tmp_path: Path) -> None:
    new = edit("document.$id", "document.$createdDatetime")
    changes = changed(tmp_path, BASE, new)
    change = found(
        changes, "breaking", "source-changed", ("new.yaml", *at(new, "document.$created"))
    )
    assert "document.$id → document.$createdDatetime" in change.message
    assert [c.kind for c in changes] == ["breaking"]  # sources are not stored: no data change


def test_a_renamed_path(tmp_path: Path) -> None:
    new = edit("  /notes:", "  /memos:")
    changes = changed(tmp_path, BASE, new)
    where = ("new.yaml", *at(new, "/memos:"))
    change = found(changes, "breaking", "path-renamed", where)
    assert change.message == "collection /notes renamed to /memos"
    assert "orphans" in found(changes, "data", "path-renamed", where).message
    assert not [c for c in changes if c.rule in ("path-removed", "path-added")]


def test_a_renamed_path_parameter_is_compatible(tmp_path: Path) -> None:
    new = edit("  /events/{id}:", "  /events/{eventid}:")
    changes = changed(tmp_path, BASE, new)
    assert [(c.kind, c.rule) for c in changes] == [("compatible", "path-parameter-renamed")]


def test_parameters_becoming_required(tmp_path: Path) -> None:
    new = edit("{name: q, in: query,", "{name: q, in: query, required: true,")
    changes = changed(tmp_path, BASE, new)
    found(changes, "breaking", "parameter-required", ("new.yaml", *at(new, "true")))
    added = edit(
        "        - {name: q,",
        "        - {name: r, in: query, required: true, schema: {type: string}}\n"
        "        - {name: q,",
    )
    changes = changed(tmp_path, BASE, added)
    found(changes, "breaking", "parameter-required", ("new.yaml", *at(added, "{name: r")))


def test_a_changed_default_shows_in_stored_documents(tmp_path: Path) -> None:
    new = edit("minimum: 0}", "minimum: 0, default: 3}")
    old = edit("minimum: 0}", "minimum: 0, default: 1}")
    changes = changed(tmp_path, old, new)
    found(changes, "data", "default-changed", ("new.yaml", *at(new, "3}")))


# -- access ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "direction"),
    [
        ("public", "jwt.sub === 'a'", "tightened"),
        ("jwt.sub === 'a'", "public", "loosened"),
        ("jwt.sub === 'a'", "jwt.sub === 'a' && jwt.role === 'x'", "tightened"),
        ("jwt.sub === 'a' && jwt.role === 'x'", "jwt.sub === 'a'", "loosened"),
        ("jwt.sub === 'a' || jwt.role === 'x'", "jwt.sub === 'a'", "tightened"),
        ("jwt.sub === 'a'", "jwt.role === 'x' || jwt.sub === 'a'", "loosened"),
        ("jwt.sub === 'a'", "jwt.sub === 'b'", "changed"),
        ("jwt.sub === 'a'", "(jwt.sub  ===  'a')", ""),
        (None, "jwt.sub === 'a'", "tightened"),
        ("jwt.sub === 'a'", None, "loosened"),
        (None, "public", "loosened"),
    ],
)
def test_acl_direction(old: str | None, new: str | None, direction: str) -> None:
    assert acl_direction(old, new) == direction


def test_rule_changes_are_located_and_shown_old_to_new(tmp_path: Path) -> None:
    new = edit(
        "x-datastore-acl: jwt.sub === 'a' || jwt.role === 'admin'",
        "x-datastore-acl: jwt.sub === 'a'",
    ).replace(
        "      x-datastore-acl: public\n      parameters",
        "      x-datastore-acl: jwt.sub === 'a'\n      parameters",
    )
    changes = changed(tmp_path, BASE, new)
    post = found(changes, "access", "acl-changed", ("new.yaml", *at(new, "jwt.sub === 'a'", 2)))
    assert post.direction == "tightened"
    assert post.old == "jwt.sub === 'a' || jwt.role === 'admin'"
    assert post.new == "jwt.sub === 'a'"
    assert "→" in post.message
    get = found(changes, "access", "acl-changed", ("new.yaml", *at(new, "jwt.sub === 'a'", 1)))
    assert get.direction == "tightened"
    assert "access tightened" in format_changes(changes, "text")


# -- compatible -----------------------------------------------------------------------------


def test_additions_are_compatible(tmp_path: Path) -> None:
    new = edit(
        "        code: {type: string}\n",
        "        code: {type: string}\n        note: {type: string}\n",
    )
    new = new.replace("enum: [a, b]", "enum: [a, b, c]")
    new = new.replace(
        "components:",
        "  /tags:\n    get:\n      x-datastore-acl: public\n"
        "      responses: {'200': {description: ok}}\ncomponents:",
    )
    new = new.replace(
        "  /events/{id}:\n",
        "  /events/{id}:\n    delete:\n      x-datastore-acl: public\n"
        "      responses: {'204': {description: gone}}\n",
    )
    changes = changed(tmp_path, BASE, new)
    assert {c.kind for c in changes} == {"compatible"}
    found(changes, "compatible", "property-added", ("new.yaml", *at(new, "note:")))
    found(changes, "compatible", "enum-widened", ("new.yaml", *at(new, "[a, b, c]")))
    found(changes, "compatible", "collection-added", ("new.yaml", *at(new, "/tags:")))
    found(changes, "compatible", "operation-added", ("new.yaml", *at(new, "delete:")))
    assert not fails(changes, "breaking")
    assert fails(changes, "any")
    assert not fails(changes, "none")


# -- sources: files with $refs, git revisions, recorded text --------------------------------


def test_changes_in_referenced_files_are_located_there(tmp_path: Path) -> None:
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    for folder, required in ((old_dir, '["a"]'), (new_dir, '["a", "b"]')):
        (folder / "schemas").mkdir(parents=True)
        (folder / "schemas" / "item.json").write_text(
            '{"type": "object",\n "properties": {"a": {"type": "string"},"b": {"type":"string"}},\n'
            f' "required": {required}}}\n'
        )
        (folder / "api.yaml").write_text(
            BASE.replace("'#/components/schemas/event'", "'./schemas/item.json'")
        )
    changes = compare(load_blueprint(old_dir / "api.yaml"), load_blueprint(new_dir / "api.yaml"))
    change = found(changes, "breaking", "property-required", ("new/schemas/item.json", 3, 20))
    assert "schema item: property b becomes required" in change.message


def test_git_revisions_and_recorded_text(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "blueprint.yaml").write_text(BASE)
    git("add", ".")
    git("commit", "-qm", "one")
    new = edit("enum: [a, b]", "enum: [a]")
    (tmp_path / "api" / "blueprint.yaml").write_text(new)
    old = load_from_git("git:HEAD:api/blueprint.yaml", cwd=tmp_path)
    changes = compare(old, load_blueprint(tmp_path / "api" / "blueprint.yaml"))
    assert [c.rule for c in changes] == ["enum-narrowed", "enum-narrowed"]
    assert compare(old, load_from_git("git:HEAD:./api/blueprint.yaml", cwd=tmp_path)) == []
    assert old.locate(("paths", "/notes"))[0] == "git:HEAD:api/blueprint.yaml"
    recorded = load_from_text(BASE, "database:default@abc")
    assert recorded.locate(("paths", "/notes", "<key>")) == (
        "database:default@abc",
        *at(BASE, "/notes:"),
    )


def test_formats(tmp_path: Path) -> None:
    changes = changed(tmp_path, BASE, edit("enum: [a, b]", "enum: [a]"))
    github = format_changes(changes, "github").splitlines()
    assert github[0].startswith("::error file=")
    assert ",line=" in github[0]
    assert ",col=" in github[0]
    text = format_changes(changes, "text").splitlines()
    assert text[-1] == "1 breaking, 1 data, 0 access, 0 compatible"
    assert format_changes([], "text") == "no changes"
