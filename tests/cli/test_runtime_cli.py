"""CLI tests for every queue and ledger command: exit codes, stdout and stderr apart."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from airgate.cli import main

POLICY = """\
apiVersion: airgate/v1
kind: Policy
metadata: {name: t}
spec:
  rules:
    - id: t.isolate
      match: {verdict: [malicious, suspicious], entity: device}
      action: isolate_device
      approval: required
    - id: t.quarantine
      match: {verdict: malicious, entity: file}
      action: quarantine_file
      approval: auto
      revert_after: 24h
    - id: t.no-dc
      effect: exclude
      reason: never isolate a domain controller
      match: {entity: device, where: {field: deviceDnsName, glob: "dc*"}}
      actions: [isolate_device]
"""

CONFIG = """\
users:
  alice: [active-remediation]
  dave: [search-and-purge]
  root: [global-admin]
"""


def investigation(inv: str = "inv-7", device: str = "d1", name: str = "ws1") -> str:
    return json.dumps({"apiVersion": "airgate/v1", "kind": "Investigation", "id": inv,
                       "evidence": [
        {"type": "device", "verdict": "malicious", "name": name,
         "fields": {"mdeDeviceId": device, "deviceDnsName": name}},
        {"type": "device", "verdict": "malicious", "name": "dc01",
         "fields": {"mdeDeviceId": "dc", "deviceDnsName": "dc01"}},
        {"type": "file", "verdict": "malicious", "name": "evil.exe",
         "fields": {"mdeDeviceId": device, "fileDetails": {"sha256": "aa11"}}},
    ]})


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        (tmp_path / "policy.yaml").write_text(POLICY)
        (tmp_path / "airgate.yaml").write_text(CONFIG)
        (tmp_path / "inv.json").write_text(investigation())
        self.env = {"AIRGATE_DB": str(tmp_path / "q.db"),
                    "AIRGATE_CONFIG": str(tmp_path / "airgate.yaml"),
                    "AIRGATE_NOW": "2024-05-01T12:00:00Z", "AIRGATE_ACTOR": "bob"}
        # The tests move the clock: only a demo store lets them.
        made = self.run("init", "--demo")
        assert made.exit_code == 0, made.stderr

    def run(self, *args: str, **env: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(main, list(args), env={**self.env, **env})

    def submit(self, *extra: str):  # type: ignore[no-untyped-def]
        return self.run("submit", str(self.tmp / "inv.json"), "--policy",
                        str(self.tmp / "policy.yaml"), *extra)


@pytest.fixture
def cli(tmp_path: Path) -> Env:
    return Env(tmp_path)


def test_submit_table_shows_created_and_excluded(cli):
    result = cli.submit()
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "OUTCOME", "STATUS"]
    assert "excluded by t.no-dc" in result.stdout
    assert "reverts 2024-05-02 12:00:00Z" in result.stdout


def test_submit_json_and_merge(cli):
    first = json.loads(cli.submit("--format", "json").stdout)
    assert [o["outcome"] for o in first] == ["created", "excluded", "created"]
    assert first[0]["decision"]["action"] == "isolate_device"
    again = json.loads(cli.submit("--format", "json").stdout)
    assert again[0]["outcome"] == "merged" and again[0]["action_id"] == 1
    assert again[2]["status"] == "deduplicated"  # the file was quarantined a moment ago


def test_submit_with_a_broken_policy(cli):
    (cli.tmp / "policy.yaml").write_text("apiVersion: airgate/v1\nkind: Policy\n")
    result = cli.submit()
    assert result.exit_code == 1
    assert "policy.yaml:" in result.stderr and result.stdout == ""


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_actions_formats(cli, fmt):
    cli.submit()
    result = cli.run("actions", "--format", fmt)
    assert result.exit_code == 0
    if fmt == "json":
        assert [a["id"] for a in json.loads(result.stdout)] == [1]
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(result.stdout)))
        assert rows[0][:3] == ["id", "status", "investigation"] and rows[1][0] == "1"
    else:
        assert "isolate_device" in result.stdout


def test_actions_filters_and_limit(cli):
    cli.submit()
    (cli.tmp / "inv2.json").write_text(investigation("inv-8", "d9", "ws9"))
    cli.run("submit", str(cli.tmp / "inv2.json"), "--policy", str(cli.tmp / "policy.yaml"))
    out = cli.run("actions", "--investigation", "inv-8", "--format", "json")
    assert [a["investigation"] for a in json.loads(out.stdout)] == ["inv-8"]
    out = cli.run("actions", "--status", "completed", "--action-type", "quarantine_file",
                  "--investigation", "inv-7", "--format", "json")
    assert [a["id"] for a in json.loads(out.stdout)] == [2]
    out = cli.run("actions", "--limit", "1", "--format", "json")
    assert len(json.loads(out.stdout)) == 1 and "--limit 0 shows all" in out.stderr
    assert cli.run("actions", "--since", "1h", "--format", "json").exit_code == 0
    bad = cli.run("actions", "--since", "yesterday")
    assert bad.exit_code == 2 and "malformed time" in bad.stderr


def test_csv_guards_formula_injection(cli):
    (cli.tmp / "inv.json").write_text(investigation(name='=HYPERLINK("http://x")'))
    cli.submit()
    rows = list(csv.reader(io.StringIO(cli.run("actions", "--format", "csv").stdout)))
    assert rows[1][5] == "'=HYPERLINK(\"http://x\")"


def test_approve_flow_and_show(cli):
    cli.submit()
    refused = cli.run("approve", "1")  # bob holds no role
    assert refused.exit_code == 1
    assert "airgate: error: cannot approve action 1: bob holds no role" in refused.stderr
    ok = cli.run("approve", "1", "--actor", "alice", "--comment", "confirmed")
    assert ok.exit_code == 0 and "completed" in ok.stdout
    again = cli.run("approve", "1", "--actor", "alice")
    assert again.exit_code == 1 and "it is completed" in again.stderr
    shown = cli.run("show", "1")
    assert "status: completed" in shown.stdout
    assert "alice: confirmed" in shown.stdout
    assert "refused" in shown.stdout
    result_line = next(x for x in shown.stdout.splitlines() if x.startswith("result: "))
    assert json.loads(result_line.removeprefix("result: "))["recorded"] is True
    story = json.loads(cli.run("show", "1", "--format", "json").stdout)
    assert [e["event"] for e in story["ledger"]] == [
        "created", "refused", "approved", "started", "completed"]
    assert cli.run("show", "2").stdout.count("reverts automatically at: 2024-05-02") == 1


def test_show_unknown(cli):
    result = cli.run("show", "99")
    assert result.exit_code == 1 and result.stderr == "airgate: error: no action 99\n"


def test_reject_needs_reason(cli):
    cli.submit()
    missing = cli.run("reject", "1", "--actor", "alice")
    assert missing.exit_code == 2 and "--reason" in missing.stderr
    ok = cli.run("reject", "1", "--actor", "alice", "--reason", "false positive",
                 "--format", "json")
    assert json.loads(ok.stdout)[0]["status"] == "rejected"


def test_bulk_of_mixed_types_is_a_usage_error(cli):
    cli.submit()
    result = cli.run("approve", "1", "2", "--actor", "root")
    assert result.exit_code == 2 and "share an action type" in result.stderr


def test_history_undo_redo(cli):
    cli.submit()
    cli.run("approve", "1", "--actor", "alice")
    hist = cli.run("history", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(hist.stdout)))
    assert {r["id"] for r in rows} == {"1", "2"}
    assert cli.run("history", "--decided-by", "alice", "--format", "json").stdout.count(
        '"id"') == 1
    undone = cli.run("undo", "1", "--actor", "alice")
    assert undone.exit_code == 0 and "undone" in undone.stdout
    policy = ("--policy", str(cli.tmp / "policy.yaml"))
    redo = cli.run("redo", "1", "--action", "contain_device", "--actor", "alice",
                   "--format", "json", *policy)
    assert json.loads(redo.stdout)[0]["status"] == "pending"
    bad = cli.run("redo", "1", "--action", "contain_device", *policy)
    assert bad.exit_code == 1 and "it is superseded" in bad.stderr


def test_undo_all_instances(cli):
    cli.submit()
    (cli.tmp / "inv2.json").write_text(investigation("inv-8", "d9", "ws9"))
    cli.run("submit", str(cli.tmp / "inv2.json"), "--policy", str(cli.tmp / "policy.yaml"),
            AIRGATE_NOW="2024-05-01T14:00:00Z")
    result = cli.run("undo", "2", "--all-instances", "--actor", "alice", "--format", "json",
                     AIRGATE_NOW="2024-05-01T14:00:00Z")
    assert sorted(a["id"] for a in json.loads(result.stdout)) == [2, 4]


def test_investigations(cli):
    cli.submit()
    out = cli.run("investigations")
    assert "inv-7" in out.stdout and "pending approval" in out.stdout
    cli.run("reject", "1", "--actor", "alice", "--reason", "no")
    doc = json.loads(cli.run("investigations", "--format", "json").stdout)
    assert doc[0]["status"] == "partially remediated"


def test_expire_and_tick(cli):
    cli.submit()
    later = {"AIRGATE_NOW": "2024-05-09T12:00:00Z"}
    assert cli.run("expire", **later).stdout == "expired 1 action(s): 1\n"
    assert cli.run("expire", **later).stdout == "expired 0 action(s)\n"
    tick = cli.run("tick", "--format", "json", **later)
    assert json.loads(tick.stdout) == {"expired": [], "reverted": [2], "reconciled": []}


def test_readers_never_expire_or_revert(cli):
    cli.submit()  # 1 pending isolation (expires in 7 days), 2 a quarantine reverting in 24 h
    later = {"AIRGATE_NOW": "2024-05-09T12:00:00Z"}
    before = cli.run("ledger", "export").stdout
    out = cli.run("actions", "--format", "json", **later)
    assert [(a["id"], a["status"]) for a in json.loads(out.stdout)] == [(1, "pending")]
    table = cli.run("actions", **later).stdout
    assert "not yet recorded: airgate tick records it" in table
    assert "(passed: expired, recorded by the next airgate tick)" in cli.run(
        "show", "1", **later).stdout
    for reader in (["history"], ["investigations"], ["show", "2"], ["actions", "--format",
                                                                     "csv"]):
        assert cli.run(*reader, **later).exit_code == 0
    assert cli.run("ledger", "export").stdout == before  # nothing expired, nothing reverted
    assert json.loads(cli.run("show", "2", "--format", "json").stdout)["action"][
        "status"] == "completed"
    tick = json.loads(cli.run("tick", "--format", "json", **later).stdout)
    assert tick == {"expired": [1], "reverted": [2], "reconciled": []}


def test_ledger_verify_export_and_tamper(cli):
    cli.submit()
    ok = cli.run("ledger", "verify")
    assert ok.exit_code == 0 and ok.stdout.startswith("ledger ok: ")
    entries = json.loads(cli.run("ledger", "export").stdout)
    assert [(e["seq"], e["event"]) for e in entries[:2]] == [(1, "initialized"), (2, "created")]
    rows = list(csv.DictReader(io.StringIO(cli.run("ledger", "export", "--format",
                                                   "csv").stdout)))
    assert len(rows) == len(entries)
    with sqlite3.connect(cli.tmp / "q.db") as conn:
        conn.execute("UPDATE ledger SET actor = 'mallory' WHERE seq = 2")
    bad = cli.run("ledger", "verify")
    assert bad.exit_code == 1
    assert "ledger broken at entry 2: entry 2 was changed" in bad.stderr


def test_damaged_database(cli):
    (cli.tmp / "bad.db").write_bytes(b"garbage" * 1000)
    result = cli.run("actions", AIRGATE_DB=str(cli.tmp / "bad.db"))
    assert result.exit_code == 1
    assert "is damaged or not an airgate database" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_clock_and_reserved_actor(cli):
    assert cli.run("actions", AIRGATE_NOW="soon").exit_code == 2
    cli.submit()
    result = cli.run("approve", "1", "--actor", "automation")
    assert result.exit_code == 2 and "reserved" in result.stderr


def test_bad_config_is_located(cli):
    (cli.tmp / "airgate.yaml").write_text("users:\n  alice: admin\n")
    result = cli.run("actions")
    assert result.exit_code == 1
    assert "airgate.yaml:2:10" in result.stderr


def test_every_runtime_command_has_help(cli):
    for name in ("submit", "actions", "show", "approve", "reject", "history", "undo", "redo",
                 "investigations", "expire", "tick", "ledger"):
        result = cli.run(name, "--help")
        assert result.exit_code == 0 and "Usage:" in result.stdout
