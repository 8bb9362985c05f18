"""Issue 14, sections 1 and 2 from the command line: who may move the clock, who acts,
and where the roles that govern a store come from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from airgate.cli import main
from runtime_helpers import raw_sqlite

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
    - id: t.quarantine
      match: {verdict: malicious, entity: file}
      action: quarantine_file
      approval: auto
      revert_after: 24h
"""

INVESTIGATION = json.dumps({"apiVersion": "airgate/v1", "kind": "Investigation", "id": "inv-1",
                            "evidence": [
    {"type": "device", "verdict": "malicious", "name": "ws1", "fields": {"mdeDeviceId": "d1"}},
    {"type": "file", "verdict": "malicious", "name": "evil.exe",
     "fields": {"mdeDeviceId": "d1", "fileDetails": {"sha256": "aa11"}}},
]})

CONFIG = "users:\n  alice: [active-remediation]\n  carol: [active-remediation]\n" \
         "  root: [global-admin]\n"
PAST = "2024-05-01T12:00:00Z"


class Box:
    """A store, a policy, evidence and a config in a tmp folder; no clock pinned."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        (tmp / "policy.yaml").write_text(POLICY)
        (tmp / "inv.json").write_text(INVESTIGATION)
        (tmp / "airgate.yaml").write_text(CONFIG)
        self.db = tmp / "q.db"
        self.env = {"AIRGATE_DB": str(self.db), "AIRGATE_CONFIG": str(tmp / "airgate.yaml"),
                    "AIRGATE_ACTOR": "bob", "AIRGATE_NOW": ""}

    def run(self, *args: str, **env: str) -> Result:
        return CliRunner().invoke(main, list(args), env={**self.env, **env})

    def process(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """The CLI in its own process (a PostgreSQL engine lives as long as it)."""
        full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **self.env, **env}
        result = subprocess.run([sys.executable, "-c", "from airgate.cli import main; main()",
                                 *args], env=full, capture_output=True, text=True, timeout=120)
        result.exit_code = result.returncode  # type: ignore[attr-defined]
        return result

    def submit(self, *extra: str, **env: str) -> Result:
        return self.run("submit", str(self.tmp / "inv.json"), "--policy",
                        str(self.tmp / "policy.yaml"), *extra, **env)

    def ledger(self) -> list[tuple[int, str, str]]:
        with raw_sqlite(self.db) as conn:
            return conn.execute("SELECT seq, event, actor FROM ledger ORDER BY seq").fetchall()

    def statuses(self) -> list[tuple[int, str]]:
        with raw_sqlite(self.db) as conn:
            return conn.execute("SELECT id, status FROM actions ORDER BY id").fetchall()


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


# ---------------------------------------------------------------- 1. the clock
@pytest.mark.parametrize("command", [
    ["actions"], ["history"], ["show", "1"], ["investigations"], ["tick"], ["expire"],
    ["approve", "1", "--actor", "alice"], ["reject", "1", "--actor", "alice", "--reason", "x"],
    ["undo", "2", "--actor", "alice"],
])
def test_a_pinned_clock_is_refused_on_a_live_store(box, command):
    assert box.submit().exit_code == 0  # real time: 1 pending, 2 completed with a revert due
    before = (box.ledger(), box.statuses())
    result = box.run(*command, AIRGATE_NOW="2031-01-01T00:00:00Z")
    assert result.exit_code == 2, result.output
    assert "AIRGATE_NOW pins the clock only on a demo store" in result.stderr
    assert (box.ledger(), box.statuses()) == before  # nothing expired, reverted or approved


def test_a_pinned_clock_in_the_past_cannot_submit_or_approve_on_a_live_store(box):
    result = box.submit(AIRGATE_NOW=PAST)
    assert result.exit_code == 2 and "demo store" in result.stderr
    assert box.statuses() == []


@pytest.mark.parametrize("when", ["9999-12-31T23:00Z", "1999-12-31T23:59:59Z", "2200-01-01",
                                  "0001-01-01T00:00+01:00"])
def test_a_time_out_of_range_is_a_usage_error(box, when):
    assert box.run("init", "--demo").exit_code == 0
    for command in (["submit", str(box.tmp / "inv.json"), "--policy",
                     str(box.tmp / "policy.yaml")], ["actions"], ["tick"]):
        result = box.run(*command, AIRGATE_NOW=when)
        assert result.exit_code == 2, result.output
        assert "out of range" in result.stderr and "Traceback" not in result.stderr
        assert result.exception is None or isinstance(result.exception, SystemExit)
    assert box.statuses() == []


def test_since_out_of_range_is_a_usage_error(box):
    assert box.run("init", "--demo").exit_code == 0
    result = box.run("history", "--since", "9999-12-31T23:00Z")
    assert result.exit_code == 2 and "out of range" in result.stderr
    result = box.run("actions", "--since", "999999999w")
    assert result.exit_code == 2 and "reaches back before 2000-01-01" in result.stderr
    result = box.run("history", "--since", "1000000000h")  # past the 9 digits of a span
    assert result.exit_code == 2 and "reaches back before 2000-01-01" in result.stderr


def test_a_demo_store_runs_on_the_pinned_clock(box):
    made = box.run("init", "--demo", AIRGATE_NOW=PAST)
    assert made.exit_code == 0 and "demo store" in made.stdout
    assert box.ledger() == [(1, "initialized", "bob")]
    assert box.submit(AIRGATE_NOW=PAST).exit_code == 0
    tick = box.run("tick", "--format", "json", AIRGATE_NOW="2024-05-09T12:00:00Z")
    assert json.loads(tick.stdout) == {"expired": [1], "reverted": [2], "reconciled": []}
    assert box.run("init", "--demo").stdout == "already a demo store\n"


def test_a_live_store_cannot_become_a_demo_store(box):
    assert box.submit().exit_code == 0
    result = box.run("init", "--demo")
    assert result.exit_code == 1 and "only a new store can be made a demo store" in result.stderr
    assert box.run("actions", AIRGATE_NOW=PAST).exit_code == 2


# ---------------------------------------------------------------- 2. actors
def test_an_empty_actor_is_a_usage_error(box):
    box.submit()
    for command in (["approve", "1"], ["reject", "1", "--reason", "x"], ["undo", "2"],
                    ["redo", "2", "--action", "run_antivirus_scan", "--policy",
                     str(box.tmp / "policy.yaml")]):
        result = box.run(*command, "--actor", "", AIRGATE_ACTOR="alice")
        assert result.exit_code == 2 and "--actor is empty" in result.stderr, command
    result = box.submit("--actor", "  ")
    assert result.exit_code == 2 and "--actor is empty" in result.stderr
    assert box.statuses() == [(1, "pending"), (2, "completed")]


@pytest.mark.parametrize("name", ["automation", "system", " Automation ", "ＳＹＳＴＥＭ"])
def test_submit_refuses_the_reserved_actor_names(box, name):
    result = box.submit("--actor", name)
    assert result.exit_code == 2 and "reserved for airgate itself" in result.stderr
    assert box.statuses() == []


def test_the_evidence_cannot_make_its_submitter_an_approver(box):
    # alice writes "automatedInvestigation" into her own evidence: her action is manual.
    doc = {**json.loads(INVESTIGATION), "source": "automatedInvestigation"}
    (box.tmp / "inv.json").write_text(json.dumps(doc))
    made = json.loads(box.submit("--actor", "alice", "--format", "json").stdout)
    assert made[0]["action"]["source"] == "manual"
    refused = box.run("approve", "1", "--actor", "Alice")
    assert refused.exit_code == 1 and "submitted this manual action" in refused.stderr
    story = json.loads(box.run("show", "1", "--format", "json").stdout)
    assert story["evidence"][0]["data"]["action_source"] == "automatedInvestigation"
    shown = box.run("show", "1").stdout
    assert "source: manual; submitted by alice" in shown
    assert "evidence says source: automatedInvestigation" in shown
    assert box.run("approve", "1", "--actor", "carol").exit_code == 0


def test_an_automation_identity_keeps_the_evidence_source(box):
    (box.tmp / "airgate.yaml").write_text(CONFIG + "automation: [soar]\n")
    made = json.loads(box.submit("--actor", "SOAR", "--format", "json").stdout)
    assert made[0]["action"]["source"] == "automatedInvestigation"
    assert made[0]["action"]["submitted_by"] == "soar"


def test_names_that_normalize_alike_are_one_approver(box):
    (box.tmp / "policy.yaml").write_text(POLICY.replace(
        "approval: required", "approval: {quorum: 2}", 1))
    box.submit()
    assert box.run("approve", "1", "--actor", "alice").exit_code == 0
    again = box.run("approve", "1", "--actor", " ALICE ")
    assert again.exit_code == 1 and "alice already approved it" in again.stderr
    assert box.statuses()[0] == (1, "pending")


def test_history_finds_a_decider_by_any_spelling(box):
    box.submit()
    assert box.run("reject", "1", "--actor", "Carol", "--reason", "no").exit_code == 0
    found = json.loads(box.run("history", "--decided-by", " CAROL", "--format", "json").stdout)
    assert [(a["id"], a["decided_by"]) for a in found] == [(1, "carol")]


def test_a_config_with_two_spellings_of_one_name_is_a_located_error(box):
    (box.tmp / "airgate.yaml").write_text(
        "users:\n  alice: [active-remediation]\n  Alice: [global-admin]\n")
    result = box.run("actions")
    assert result.exit_code == 1
    assert "airgate.yaml:3:3: " in result.stderr
    assert "'Alice' and 'alice' are the same actor" in result.stderr
    fullwidth = box.tmp / "fw.yaml"
    fullwidth.write_text("users:\n  bob: [a]\n  ｂｏｂ: [b]\n")
    result = box.run("actions", "--config", str(fullwidth))
    assert result.exit_code == 1 and "fw.yaml:3:3: " in result.stderr


# ---------------------------------------------------------------- 2. the governing config
EVIL = "users:\n  mallory: [global-admin]\n"


def test_a_pushed_config_governs_whatever_config_the_caller_names(box):
    pushed = box.run("config", "push", str(box.tmp / "airgate.yaml"), "--actor", "root")
    assert pushed.exit_code == 0, pushed.stderr
    assert "config pushed: 3 users" in pushed.stdout
    box.submit()
    (box.tmp / "evil.yaml").write_text(EVIL)
    result = box.run("approve", "1", "--actor", "mallory", "--config", str(box.tmp / "evil.yaml"))
    assert result.exit_code == 1
    assert "mallory holds no role" in result.stderr
    assert "the ones in this file are ignored" in result.stderr
    assert box.statuses()[0] == (1, "pending")
    assert [e[1:] for e in box.ledger()[:1]] == [("configured", "root")]
    assert box.run("approve", "1", "--actor", "alice",
                   "--config", str(box.tmp / "evil.yaml")).exit_code == 0


def test_only_a_global_admin_of_the_stored_config_may_push(box):
    assert box.run("config", "push", str(box.tmp / "airgate.yaml"), "--actor", "root"
                   ).exit_code == 0
    (box.tmp / "evil.yaml").write_text(EVIL)
    result = box.run("config", "push", str(box.tmp / "evil.yaml"), "--actor", "mallory")
    assert result.exit_code == 1
    assert "mallory is not a global-admin of the config it would replace" in result.stderr
    shown = json.loads(box.run("config", "show").stdout)
    assert shown["pushed_by"] == "root" and "mallory" not in shown["config"]["users"]
    assert [e[1:] for e in box.ledger()] == [("configured", "root"), ("refused", "mallory")]
    (box.tmp / "next.yaml").write_text(CONFIG + "  erin: [security-admin]\n")
    assert box.run("config", "push", str(box.tmp / "next.yaml"), "--actor", "ROOT"
                   ).exit_code == 0
    assert "erin" in json.loads(box.run("config", "show").stdout)["config"]["users"]


def test_the_first_push_must_make_its_pusher_a_global_admin(box):
    result = box.run("config", "push", str(box.tmp / "airgate.yaml"), "--actor", "alice")
    assert result.exit_code == 1 and "first push must make its pusher a global-admin" in (
        result.stderr)
    (box.tmp / "none.yaml").write_text("users:\n  alice: [active-remediation]\n")
    result = box.run("config", "push", str(box.tmp / "none.yaml"), "--actor", "alice")
    assert result.exit_code == 1 and "names no global-admin" in result.stderr
    assert "no config stored" in box.run("config", "show").stdout


def test_a_pushed_config_is_validated_with_locations(box):
    (box.tmp / "bad.yaml").write_text("users:\n  root: global-admin\n")
    result = box.run("config", "push", str(box.tmp / "bad.yaml"), "--actor", "root")
    assert result.exit_code == 1 and "bad.yaml:2:9" in result.stderr


def test_the_ledger_records_roles_but_never_executor_arguments(box):
    (box.tmp / "exec.yaml").write_text(CONFIG + "executors:\n  isolate_device: {type: command,"
                                       " argv: [/bin/true, --token=s3cret]}\n")
    assert box.run("config", "push", str(box.tmp / "exec.yaml"), "--actor", "root"
                   ).exit_code == 0
    exported = box.run("ledger", "export").stdout
    assert "s3cret" not in exported
    entry = json.loads(exported)[0]
    assert entry["details"]["executors"] == ["isolate_device"]
    assert entry["details"]["users"]["root"] == ["global-admin"]


def test_on_postgresql_the_database_user_acts_and_roles_come_from_the_store(box):
    from runtime_helpers import clean_postgres_url

    url = clean_postgres_url()
    box.env["AIRGATE_DB"] = url
    box.env.pop("AIRGATE_ACTOR")
    box.run = box.process  # type: ignore[method-assign]  # engines close with the process
    (box.tmp / "airgate.yaml").write_text(CONFIG + "  postgres: [active-remediation]\n")
    made = json.loads(box.submit("--format", "json").stdout)
    assert made[0]["action"]["submitted_by"] == "postgres"
    claimed = box.run("approve", "1", "--actor", "alice")
    assert claimed.exit_code == 2
    assert "on PostgreSQL the actor is the database user 'postgres'" in claimed.stderr
    local_roles = box.run("approve", "1")  # the local file's roles do not count here
    assert local_roles.exit_code == 1 and "postgres holds no role" in local_roles.stderr
    assert "users, automation and executors come only from the database" in (
        local_roles.stderr)
    (box.tmp / "governing.yaml").write_text(CONFIG + "  postgres: [global-admin]\n")
    assert box.run("config", "push", str(box.tmp / "governing.yaml")).exit_code == 0
    # postgres submitted it as a person (manual), so even a global admin may not approve it
    own = box.run("approve", "1")
    assert own.exit_code == 1 and "submitted this manual action" in own.stderr
    # A mapped database user acts under the name the stored config gives it.
    (box.tmp / "mapped.yaml").write_text(
        CONFIG + "  postgres: [global-admin]\ndatabase_users: {postgres: Carol}\n")
    assert box.run("config", "push", str(box.tmp / "mapped.yaml")).exit_code == 0
    assert box.run("approve", "1", "--actor", "alice").exit_code == 2
    approved = box.run("approve", "1", "--format", "json")
    assert approved.exit_code == 0, approved.stderr
    assert json.loads(approved.stdout)[0]["decided_by"] == "carol"


def test_the_stored_executors_run_not_the_callers(box):
    script = box.tmp / "mark.py"
    script.write_text("import sys, pathlib; sys.stdin.read();"
                      " pathlib.Path(sys.argv[1]).write_text('ran')\n")

    def executor(marker: str) -> str:
        return (f"executors:\n  isolate_device: {{type: command, argv: [{sys.executable!r},"
                f" {str(script)!r}, {str(box.tmp / marker)!r}]}}\n")

    (box.tmp / "governing.yaml").write_text(CONFIG + executor("pushed"))
    assert box.run("config", "push", str(box.tmp / "governing.yaml"), "--actor", "root"
                   ).exit_code == 0
    (box.tmp / "evil.yaml").write_text(CONFIG + executor("callers"))
    box.submit()
    result = box.run("approve", "1", "--actor", "alice", "--config", str(box.tmp / "evil.yaml"))
    assert result.exit_code == 0, result.stderr
    assert (box.tmp / "pushed").exists() and not (box.tmp / "callers").exists()


# ---------------------------------------------------------------- settings bound to the ledger
def _sql(box: Box, statement: str) -> None:
    with raw_sqlite(box.db) as conn:
        conn.execute(statement)


def test_a_config_edited_in_the_database_governs_nothing_and_verify_names_it(box):
    assert box.run("config", "push", str(box.tmp / "airgate.yaml"), "--actor", "root"
                   ).exit_code == 0
    box.submit()
    # A writer of the database makes mallory an admin and swaps an executor's program.
    _sql(box, """UPDATE settings SET value = '{"users":{"mallory":["global-admin"]},"""
              """"executors":{"isolate_device":{"type":"command","argv":["/bin/true"]}}}'"""
              " WHERE key = 'config'")
    result = box.run("approve", "1", "--actor", "mallory")
    assert result.exit_code == 1
    assert "the store's settings do not match its ledger" in result.stderr
    assert box.statuses()[0] == (1, "pending")
    verified = box.run("ledger", "verify")
    assert verified.exit_code == 1
    assert "store settings: the stored governing config" in verified.stderr
    assert "edited outside `airgate config push`" in verified.stderr
    # mallory cannot push the forged config in; the ledgered admin restores the real one.
    (box.tmp / "evil.yaml").write_text("users:\n  mallory: [global-admin]\n")
    assert box.run("config", "push", str(box.tmp / "evil.yaml"), "--actor", "mallory"
                   ).exit_code == 1
    assert box.run("config", "push", str(box.tmp / "airgate.yaml"), "--actor", "root"
                   ).exit_code == 0
    assert box.run("approve", "1", "--actor", "alice").exit_code == 0
    assert box.run("ledger", "verify").exit_code == 0


def test_a_deleted_stored_config_does_not_hand_the_store_back_to_the_callers_file(box):
    assert box.run("config", "push", str(box.tmp / "airgate.yaml"), "--actor", "root"
                   ).exit_code == 0
    box.submit()
    _sql(box, "DELETE FROM settings WHERE key = 'config'")
    (box.tmp / "evil.yaml").write_text(EVIL)
    result = box.run("approve", "1", "--actor", "mallory", "--config", str(box.tmp / "evil.yaml"))
    assert result.exit_code == 1 and "is missing from the store (deleted?)" in result.stderr
    assert box.statuses()[0] == (1, "pending")


def test_a_demo_marker_added_by_hand_does_not_let_the_clock_move(box):
    box.submit()
    before = box.statuses()
    _sql(box, "INSERT INTO settings VALUES ('demo', 'true', '2026-01-01T00:00:00.000000Z',"
              " 'root')")
    result = box.run("tick", AIRGATE_NOW="2035-01-01T00:00:00Z")
    assert result.exit_code == 1
    assert "the demo marker has no 'initialized' ledger entry" in result.stderr
    assert box.statuses() == before
    verified = box.run("ledger", "verify", "--format", "json")
    assert verified.exit_code == 1
    assert json.loads(verified.stdout)["settings"] == [
        "the demo marker has no 'initialized' ledger entry (a live store marked as a demo"
        " store by hand?)"]


def test_the_file_that_was_pushed_draws_no_warning_and_a_different_one_does(box):
    assert box.run("config", "push", str(box.tmp / "airgate.yaml"), "--actor", "root"
                   ).exit_code == 0
    same = box.run("actions")
    assert same.exit_code == 0 and "ignored" not in same.stderr
    (box.tmp / "evil.yaml").write_text(EVIL)
    other = box.run("actions", "--config", str(box.tmp / "evil.yaml"))
    assert other.exit_code == 0 and "the ones in this file are ignored" in other.stderr
