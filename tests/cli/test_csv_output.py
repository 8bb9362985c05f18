"""CSV from `actions`, `history` and `ledger export`: no raw control character reaches the
terminal, and no cell a spreadsheet would run as a formula (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from airgate.cli import main

POLICY = """\
apiVersion: airgate/v1
kind: Policy
metadata: {name: t}
spec:
  rules:
    - id: t.isolate
      match: {verdict: malicious, entity: device}
      action: isolate_device
      approval: required
"""

# Device names an attacker chose, and the cell each must become.
NAMES = {
    "ws\x1b]0;pwned\x07\x1b[2J": "ws\\e]0;pwned\\x07\\e[2J",
    "a\nforged,row\r": "a\\nforged,row\\r",
    "=HYPERLINK(\"http://x\")": "'=HYPERLINK(\"http://x\")",
    "   =cmd|' /C calc'!A0": "'   =cmd|' /C calc'!A0",
    "\u3000+1+1": "'\u3000+1+1",
    "\uff1dSUM(1)": "'\uff1dSUM(1)",
    "\uff0b1": "'\uff0b1",
    "  \uff0d1": "'  \uff0d1",
    "\uff20A1": "'\uff20A1",
    "\t=1": "'\\t=1",
    "\r@x": "'\\r@x",
    " -2": "' -2",
    "plain name": "plain name",
    "mid=dle": "mid=dle",
}


class Env:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        (tmp / "policy.yaml").write_text(POLICY)
        (tmp / "airgate.yaml").write_text("users: {alice: [active-remediation]}\n")
        evidence = [{"type": "device", "verdict": "malicious", "name": name,
                     "fields": {"mdeDeviceId": f"d{n}", "deviceDnsName": f"h{n}"}}
                    for n, name in enumerate(NAMES)]
        (tmp / "inv.json").write_text(json.dumps({
            "apiVersion": "airgate/v1", "kind": "Investigation", "id": "inv-1",
            "evidence": evidence}))
        self.env = {"AIRGATE_DB": str(tmp / "q.db"), "AIRGATE_CONFIG": str(tmp / "airgate.yaml"),
                    "AIRGATE_NOW": "2024-05-01T12:00:00Z", "AIRGATE_ACTOR": "bob"}
        self.run("init", "--demo")  # the clock is pinned: only a demo store allows it

    def run(self, *args: str) -> Result:
        result = CliRunner().invoke(main, list(args), env=self.env)
        assert result.exit_code == 0, result.stderr
        return result


@pytest.fixture
def env(tmp_path: Path) -> Env:
    env = Env(tmp_path)
    env.run("submit", str(tmp_path / "inv.json"), "--policy", str(tmp_path / "policy.yaml"))
    return env


def assert_terminal_safe(text: str) -> None:
    unsafe = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f]
    assert unsafe == []


def test_actions_csv_escapes_controls_and_guards_formulas(env):
    out = env.run("actions", "--format", "csv").stdout
    assert_terminal_safe(out)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["entity"] for r in rows] == list(NAMES.values())


def test_history_csv_escapes_controls_and_guards_formulas(env):
    env.run("reject", "1", "--reason", "\x1b[31mred\x07", "--actor", "alice")
    env.run("reject", "2", "--reason", "  \uff1dWEBSERVICE(\"http://x\")", "--actor", "alice")
    out = env.run("history", "--format", "csv").stdout
    assert_terminal_safe(out)
    notes = {r["id"]: (r["entity"], r["note"]) for r in csv.DictReader(io.StringIO(out))}
    names = list(NAMES.values())
    assert notes == {"1": (names[0], "\\e[31mred\\x07"),
                     "2": (names[1], "'  \uff1dWEBSERVICE(\"http://x\")")}


def test_ledger_export_csv_is_terminal_safe(env):
    env.run("reject", "1", "--reason", "\x1b[31mred\x85", "--actor", "alice")
    out = env.run("ledger", "export", "--format", "csv").stdout
    assert_terminal_safe(out)
    rejected = [r for r in csv.DictReader(io.StringIO(out)) if r["event"] == "rejected"]
    assert [r["comment"] for r in rejected] == ["\\e[31mred\\x85"]
