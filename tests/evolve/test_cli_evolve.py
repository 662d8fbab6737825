"""``datastore diff`` and ``datastore check-data`` on the command line: exit codes, formats."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import ROOT, run


def test_diff_exit_codes_and_formats(tmp_path: Path) -> None:
    events = ROOT / "blueprints" / "events.yaml"
    same = run("diff", str(events), str(events))
    assert (same.returncode, same.stdout) == (0, "no changes\n")
    edited = tmp_path / "events.yaml"
    edited.write_text(
        events.read_text().replace("x-datastore-acl: public", "x-datastore-acl: jwt.sub", 1)
    )
    (tmp_path / "schemas").symlink_to(ROOT / "blueprints" / "schemas")
    tightened = run("diff", str(events), str(edited))
    assert tightened.returncode == 1
    assert "events.yaml:16:24: access tightened: GET /events: rule" in tightened.stdout
    assert run("diff", "--fail-on", "none", str(events), str(edited)).returncode == 0
    as_json = json.loads(run("diff", "--format", "json", str(events), str(edited)).stdout)
    assert as_json[0]["direction"] == "tightened"
    assert {"file", "line", "column", "kind", "rule", "message", "old", "new"} <= set(as_json[0])
    github = run("diff", "--format", "github", str(events), str(edited)).stdout
    assert github.startswith("::error file=")
    missing = run("diff", str(events), str(tmp_path / "nothing.yaml"))
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1
    assert run("diff", str(events), "git:NO-SUCH-REF:x.yaml").returncode == 2


def test_check_data_exit_codes_and_formats(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data.sqlite3'}"
    blueprint = str(ROOT / "blueprints" / "events.yaml")
    assert run("migrate", "--database", url).returncode == 0
    empty = run("check-data", blueprint, "--database", url)
    assert (empty.returncode, empty.stderr) == (0, "")
    assert empty.stdout == "0 documents checked: 0 invalid, 0 orphaned\n"
    records = tmp_path / "events.jsonl"
    records.write_text('{"_id": "e1", "name": "One", "eventDate": "2030-01-01T00:00:00Z"}\n')
    assert run("import", "events", str(records), "--database", url).returncode == 0
    records.write_text('{"_id": "e2", "name": ""}\n')
    assert run("import", "events", str(records), "--database", url).returncode == 0
    bad = run("check-data", blueprint, "--database", url)
    assert bad.returncode == 1
    assert "/events (space default): 2 checked, 1 invalid" in bad.stdout
    assert "    eventDate: is required" in bad.stdout
    as_json = json.loads(run("check-data", blueprint, "--database", url, "--format", "json").stdout)
    assert as_json["invalid"] == 1
    wrong = run("check-data", blueprint, "--database", "postgresql://nobody@127.0.0.1:1/x")
    assert wrong.returncode == 2
    assert wrong.stderr.startswith("datastore: cannot read the documents")
    assert wrong.stderr.count("\n") == 1
