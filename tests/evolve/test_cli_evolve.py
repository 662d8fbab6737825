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
