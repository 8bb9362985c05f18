"""CLI tests for every queue and ledger command: exit codes, stdout and stderr apart."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from airgate.cli import main
from runtime_helpers import connections, raw_sqlite

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
    # The same investigation again changes nothing: each decision names its action.
    again = json.loads(cli.submit("--format", "json").stdout)
    assert [(o["outcome"], o["action_id"]) for o in again] == [
        ("unchanged", 1), ("excluded", None), ("unchanged", 2)]
    assert len(json.loads(cli.run("show", "1", "--format", "json").stdout)["evidence"]) == 1
    # A new investigation on the same entities: merged, and deduplicated within the window.
    (cli.tmp / "inv2.json").write_text(investigation("inv-8"))
    other = json.loads(cli.run("submit", str(cli.tmp / "inv2.json"), "--policy",
                               str(cli.tmp / "policy.yaml"), "--format", "json").stdout)
    assert other[0]["outcome"] == "merged" and other[0]["action_id"] == 1
    assert other[2]["status"] == "deduplicated"  # the file was quarantined a moment ago


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
    cli.submit()
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
    with raw_sqlite(cli.tmp / "q.db") as conn:
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


# ---------------------------------------------------------------- what a command did, in words
QUORUM_POLICY = """\
apiVersion: airgate/v1
kind: Policy
metadata: {name: q}
spec:
  rules:
    - id: q.isolate
      match: {verdict: malicious, entity: device}
      action: isolate_device
      approval: {roles: [active-remediation], quorum: 2}
"""


def test_approve_says_how_many_approvals_the_quorum_still_needs(cli):
    (cli.tmp / "policy.yaml").write_text(QUORUM_POLICY)
    cli.submit()
    first = cli.run("approve", "1", "--actor", "alice")
    assert first.exit_code == 0
    assert first.stdout == ("action 1 (isolate_device on device ws1): approval 1 of 2 recorded;"
                            " waiting for 1 more (still pending)\n")
    second = cli.run("approve", "1", "--actor", "root")
    assert second.stdout == ("action 1 (isolate_device on device ws1): approved and carried"
                             " out: completed\n")


def test_approve_names_the_action_it_duplicates(cli):
    cli.submit()
    cli.run("approve", "1", "--actor", "alice")
    (cli.tmp / "inv2.json").write_text(investigation("inv-8"))  # the same device, a new alert
    cli.run("submit", str(cli.tmp / "inv2.json"), "--policy", str(cli.tmp / "policy.yaml"))
    result = cli.run("approve", "3", "--actor", "alice")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ("action 3 (isolate_device on device ws1): approved, not carried"
                             " out again: duplicate of action 1 (isolate_device on device"
                             " ws1), completed\n")


def test_reject_and_redo_say_what_was_done(cli):
    cli.submit()
    rejected = cli.run("reject", "1", "--actor", "alice", "--reason", "test host")
    assert rejected.stdout == ("action 1 (isolate_device on device ws1): rejected by alice:"
                               " test host\n")
    redo = cli.run("redo", "1", "--action", "contain_device", "--actor", "alice", "--policy",
                   str(cli.tmp / "policy.yaml"))
    assert redo.exit_code == 0, redo.stderr
    assert redo.stdout == ("action 3 (contain_device on device ws1): created from action 1"
                           " (isolate_device on device ws1), now superseded; pending approval"
                           " by active-remediation (quorum 1)\n")


def test_undo_all_instances_says_how_many_and_on_which_devices(cli):
    cli.submit()
    (cli.tmp / "inv2.json").write_text(investigation("inv-8", "d9", "ws9"))
    later = {"AIRGATE_NOW": "2024-05-01T14:00:00Z"}
    cli.run("submit", str(cli.tmp / "inv2.json"), "--policy", str(cli.tmp / "policy.yaml"),
            **later)
    result = cli.run("undo", "2", "--all-instances", "--actor", "alice", **later)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "--all-instances: 2 action(s) matched (1 beyond those named) on hash aa11, on 2"
        " device(s): d1, d9",
        "action 2 (quarantine_file on file evil.exe) on d1: undone",
        "action 4 (quarantine_file on file evil.exe) on d9: undone",
    ]


def test_history_shows_who_undid_an_action(cli):
    cli.submit()  # action 2 was approved by automation
    cli.run("undo", "2", "--actor", "alice")
    table_out = cli.run("history").stdout
    row = next(x for x in table_out.splitlines() if x.startswith("2 "))
    assert "automation" in row and "undone by alice" in row
    rows = list(csv.DictReader(io.StringIO(cli.run("history", "--format", "csv").stdout)))
    assert rows[0]["undone by"] == "alice" and rows[0]["decided by"] == "automation"
    doc = json.loads(cli.run("history", "--format", "json").stdout)
    assert doc[0]["undone_by"] == "alice"


def test_usage_errors_of_click_and_airgate_look_alike(cli):
    cli.submit()
    missing = cli.run("reject", "1", "--actor", "alice")
    assert (missing.exit_code, missing.stderr) == (
        2, "airgate: error: Missing option '--reason' (see 'airgate reject --help')\n")
    unknown = cli.run("frobnicate")
    assert (unknown.exit_code, unknown.stderr) == (
        2, "airgate: error: No such command 'frobnicate' (see 'airgate --help')\n")
    mixed = cli.run("approve", "1", "2", "--actor", "root")
    assert mixed.exit_code == 2 and mixed.stderr.startswith("airgate: error: ")


def test_bulk_approve_by_investigation_and_action_type(cli):
    (cli.tmp / "policy.yaml").write_text(POLICY.replace("approval: auto", "approval: required"))
    cli.submit()
    mixed = cli.run("approve", "--investigation", "inv-7", "--actor", "root")
    assert mixed.exit_code == 2 and "share an action type" in mixed.stderr
    ok = cli.run("approve", "--investigation", "inv-7", "--action-type", "quarantine_file",
                 "--actor", "root", "--format", "json")
    assert ok.exit_code == 0, ok.stderr
    assert [(a["id"], a["status"]) for a in json.loads(ok.stdout)] == [(2, "completed")]
    none_left = cli.run("reject", "--investigation", "inv-7", "--action-type",
                        "quarantine_file", "--reason", "x", "--actor", "root")
    assert none_left.exit_code == 1
    assert "no pending action in investigation inv-7 of type quarantine_file" in none_left.stderr
    both = cli.run("approve", "1", "--investigation", "inv-7", "--actor", "root")
    assert both.exit_code == 2 and "either ids or --investigation" in both.stderr
    neither = cli.run("approve", "--actor", "root")
    assert neither.exit_code == 2 and "name the actions to approve" in neither.stderr


def test_show_several_ids(cli):
    cli.submit()
    text = cli.run("show", "1", "2").stdout
    assert text.count("\nledger:") == 2 and "action 2: quarantine_file" in text
    stories = json.loads(cli.run("show", "1", "2", "--format", "json").stdout)
    assert [s["action"]["id"] for s in stories] == [1, 2]
    missing = cli.run("show", "1", "98", "99")
    assert (missing.exit_code, missing.stdout) == (1, "")
    assert missing.stderr == "airgate: error: no action 98, 99\n"


def test_tick_reports_like_expire(cli):
    cli.submit()
    tick = cli.run("tick", AIRGATE_NOW="2024-05-09T12:00:00Z")
    assert tick.stdout == ("expired 1 action(s): 1\nreverted 1 action(s): 2\n"
                           "reconciled 0 action(s)\n")


def test_shell_completion_script_is_produced():
    result = CliRunner().invoke(main, [], prog_name="airgate",
                                env={"_AIRGATE_COMPLETE": "bash_source"})
    assert result.exit_code == 0
    assert "_airgate_completion" in result.stdout and "_AIRGATE_COMPLETE" in result.stdout


def test_approve_says_when_the_executor_failed(cli):
    (cli.tmp / "airgate.yaml").write_text(
        CONFIG + "executors:\n  isolate_device: {type: command, argv: [" + str(cli.tmp / "none")
        + "]}\n")
    cli.submit()
    result = cli.run("approve", "1", "--actor", "alice")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("action 1 (isolate_device on device ws1): approved and"
                                    " carried out: failed: ")


def test_a_bare_group_still_shows_its_help(cli):
    for args in ([], ["ledger"]):
        result = cli.run(*args)
        assert "Usage: airgate" in result.output and "airgate: error" not in result.output


# ------------------------------------------------------------------ the store a command uses
READ_ONLY = [("actions",), ("history",), ("show", "1"), ("investigations",),
             ("ledger", "verify"), ("ledger", "export"), ("status",)]


@pytest.mark.parametrize("args", READ_ONLY, ids=[" ".join(a) for a in READ_ONLY])
def test_a_read_only_command_creates_no_store(cli, args):
    missing = cli.tmp / "none.db"  # the fixture's own store is a demo store made by init
    result = cli.run(*args, AIRGATE_DB=str(missing))
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(
        f"airgate: error: no airgate store found: {missing} does not exist"
        " (store chosen by AIRGATE_DB;")
    assert not list(cli.tmp.glob("none.db*"))


def test_no_store_names_the_default_it_looked_for(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli.run("actions", AIRGATE_DB="")
    assert result.exit_code == 1
    assert f"{tmp_path / 'airgate.db'} does not exist" in result.stderr
    assert "chosen by the default ./airgate.db" in result.stderr
    assert not (tmp_path / "airgate.db").exists()


def test_a_database_without_airgate_tables_is_no_store(cli):
    (cli.tmp / "other.db").write_bytes(b"")
    result = cli.run("history", AIRGATE_DB=str(cli.tmp / "other.db"))
    assert result.exit_code == 1
    assert "holds no airgate tables" in result.stderr
    assert (cli.tmp / "other.db").read_bytes() == b""


def test_status_shows_the_store_and_what_is_in_it(cli):
    cli.submit()
    status = cli.run("status", "--format", "json")
    assert status.exit_code == 0, status.output
    summary = json.loads(status.stdout)
    ledger = json.loads(cli.run("ledger", "export").stdout)
    assert summary["store"] == str(cli.tmp / "q.db")
    assert summary["chosen_by"] == "AIRGATE_DB"
    # The device waits for approval, the file is quarantined at once, dc01 is excluded.
    assert summary["by_status"] == {"completed": 1, "pending": 1}
    assert summary["actions"] == 2
    assert summary["ledger"] == {"seq": ledger[-1]["seq"], "hash": ledger[-1]["hash"]}
    text = cli.run("status").stdout
    assert f"store: {cli.tmp / 'q.db'} (sqlite; chosen by AIRGATE_DB)" in text
    assert f"ledger head: entry {ledger[-1]['seq']}, hash {ledger[-1]['hash']}" in text


def test_verbose_says_which_store_and_status_masks_a_password(cli):
    cli.submit()
    result = cli.run("actions", "--verbose")
    assert result.exit_code == 0
    assert f"airgate: store: {cli.tmp / 'q.db'} (chosen by AIRGATE_DB)" in result.stderr
    assert "airgate: store:" not in cli.run("actions").stderr
    url = "postgresql+psycopg://mallory:s3cret@127.0.0.1:1/none?password=s3cret"
    failed = cli.run("status", "--db", url)
    assert failed.exit_code == 1
    assert "mallory:***@127.0.0.1:1/none?password=***" in failed.stderr
    assert "s3cret" not in failed.output


def test_the_cli_closes_the_stores_it_opens(cli):
    for args in ((), ("actions",), ("status",), ("ledger", "verify"),
                 ("approve", "99", "--actor", "alice")):  # the last one fails: no action 99
        with connections() as (opened, closed):
            result = cli.run(*args) if args else cli.submit()
        assert opened, args
        assert sorted(closed) == sorted(opened), (args, result.output)


@pytest.mark.slow
def test_no_resource_warning_from_a_cli_run(cli):
    # Python 3.13 warns about every SQLite connection left open at exit (.ci/run runs it).
    import subprocess
    import sys

    env = {**os.environ, **cli.env}
    code = "from airgate.cli import main; main()"
    for args in (["submit", str(cli.tmp / "inv.json"), "--policy", str(cli.tmp / "policy.yaml")],
                 ["actions"], ["status"]):
        proc = subprocess.run([sys.executable, "-W", "error::ResourceWarning", "-c", code, *args],
                              env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "ResourceWarning" not in proc.stderr


# ------------------------------------------------------------------ numbers on the command line
TOO_BIG = "99999999999999999999999"


@pytest.mark.parametrize("args", [
    ("approve", TOO_BIG), ("reject", TOO_BIG, "--reason", "x"), ("undo", TOO_BIG),
    ("show", TOO_BIG), ("redo", TOO_BIG, "--action", "release_device"), ("approve", "0"),
    ("history", "--limit", TOO_BIG), ("actions", "--limit", "2147483647"),
])
def test_an_integer_out_of_range_is_a_usage_error(cli, args):
    cli.submit()
    result = cli.run(*args)
    assert result.exit_code == 2, result.output
    assert "is not in the range" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_evaluate_jobs_is_bounded(cli):
    result = cli.run("evaluate", str(cli.tmp / "inv.json"), "--policy",
                     str(cli.tmp / "policy.yaml"), "--jobs", "100000")
    assert result.exit_code == 2 and "is not in the range 0<=x<=256" in result.stderr


@pytest.mark.parametrize("value", ["abc", "nan", "-1", "inf", "1e400", "86400"])
def test_a_bad_db_timeout_is_a_usage_error(cli, value):
    cli.submit()
    result = cli.run("actions", AIRGATE_DB_TIMEOUT=value)
    assert result.exit_code == 2, result.output
    assert result.stderr == ("airgate: error: AIRGATE_DB_TIMEOUT must be a number of seconds"
                             f" from 0 to 3600, not {value!r}\n")
