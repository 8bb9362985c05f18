"""``airgate worker``: --once, JSON logs, the config switch, and signals on a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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
      match: {verdict: malicious, entity: device}
      action: isolate_device
      approval: required
    - id: t.quarantine
      match: {verdict: malicious, entity: file}
      action: quarantine_file
      approval: auto
"""

INVESTIGATION = json.dumps({"apiVersion": "airgate/v1", "kind": "Investigation", "id": "inv-1",
                            "evidence": [
    {"type": "device", "verdict": "malicious", "name": "ws1",
     "fields": {"mdeDeviceId": "d1"}},
    {"type": "file", "verdict": "malicious", "name": "evil\u202e.exe",
     "fields": {"mdeDeviceId": "d1", "fileDetails": {"sha256": "aa11"}}},
    {"type": "file", "verdict": "malicious", "name": "evil2.exe",
     "fields": {"mdeDeviceId": "d1", "fileDetails": {"sha256": "bb22"}}},
]})


class Env:
    def __init__(self, tmp: Path, config: str) -> None:
        self.tmp = tmp
        (tmp / "policy.yaml").write_text(POLICY)
        (tmp / "inv.json").write_text(INVESTIGATION)
        (tmp / "airgate.yaml").write_text(config)
        self.env = {"AIRGATE_DB": str(tmp / "q.db"), "AIRGATE_CONFIG": str(tmp / "airgate.yaml"),
                    "AIRGATE_ACTOR": "soar"}

    def run(self, *args: str, **env: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(main, list(args), env={**self.env, **env})

    def submit(self) -> None:
        made = self.run("submit", str(self.tmp / "inv.json"), "--policy",
                        str(self.tmp / "policy.yaml"))
        assert made.exit_code == 0, made.stderr

    def status(self, action_id: int) -> str:
        shown = self.run("show", str(action_id), "--format", "json")
        assert shown.exit_code == 0, shown.stderr
        return str(json.loads(shown.stdout)["action"]["status"])


WORKER_CONFIG = """\
execution: worker
automation: [soar]
users:
  alice: [active-remediation]
"""


def test_help_explains_deployment() -> None:
    result = CliRunner().invoke(main, ["worker", "--help"])
    assert result.exit_code == 0
    for words in ("execution: worker", "systemd", "SIGTERM", "--once", "--concurrency",
                  "--log-format", "idempotency key"):
        assert words in " ".join(result.stdout.split()), words


def test_once_runs_what_approve_left_and_logs_json_lines(tmp_path: Path) -> None:
    cli = Env(tmp_path, WORKER_CONFIG)
    cli.submit()
    approved = cli.run("approve", "1", "--actor", "alice")
    assert approved.exit_code == 0, approved.stderr
    assert "queued for `airgate worker`" in approved.stdout
    assert [cli.status(1), cli.status(2)] == ["approved", "approved"]  # nothing ran
    listed = cli.run("actions")
    assert "waiting for a worker" in listed.stdout
    result = cli.run("worker", "--once", "--log-format", "json", "--worker-id", "w-test")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["execute"] == [2, 3, 1] and report["errors"] == 0  # oldest approval first
    units = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(u["worker"], u["unit"], u["action_id"], u["action_type"], u["outcome"])
            for u in units] == [("w-test", "execute", 2, "quarantine_file", "completed"),
                                ("w-test", "execute", 3, "quarantine_file", "completed"),
                                ("w-test", "execute", 1, "isolate_device", "completed")]
    assert all(isinstance(u["duration_ms"], int) for u in units)
    assert "evil" not in result.stderr  # evidence text never reaches the log
    assert [cli.status(1), cli.status(2)] == ["completed", "completed"]
    shown = json.loads(cli.run("show", "1", "--format", "json").stdout)
    assert shown["ledger"][-1]["details"]["worker"] == "w-test"
    table = cli.run("show", "1").stdout.split("ledger:", 1)[1].splitlines()
    assert table[1].split()[-1] == "WORKER" and table[-1].split()[-1] == "w-test"
    again = cli.run("worker", "--once")
    assert again.exit_code == 0 and "execute 0" in again.stdout and again.stderr == ""
    assert "verified" in cli.run("ledger", "verify").stdout


def test_an_undo_in_worker_mode_waits_for_the_worker(tmp_path: Path) -> None:
    cli = Env(tmp_path, WORKER_CONFIG)
    cli.submit()
    cli.run("worker", "--once")
    undone = cli.run("undo", "2", "--actor", "alice")
    assert undone.exit_code == 0, undone.stderr
    assert "undo requested" in undone.stdout and cli.status(2) == "completed"
    result = cli.run("worker", "--once")
    assert "undo 1" in result.stdout
    assert "unit=undo action_id=2 action_type=quarantine_file outcome=undone" in result.stderr
    assert cli.status(2) == "undone"


def test_an_unknown_execution_mode_is_a_located_config_error(tmp_path: Path) -> None:
    cli = Env(tmp_path, "users:\n  alice: [active-remediation]\nexecution: later\n")
    result = cli.run("worker", "--once")
    assert result.exit_code == 1
    assert "airgate.yaml:3:12" in result.stderr and "'later' is not one of" in result.stderr


# ----------------------------------------------------------------- a real process
SLOW = """\
import os, sys, time
sys.stdin.read()
with open(sys.argv[1], "w") as f:
    f.write(str(os.getpid()))
time.sleep(float(sys.argv[2]))
"""


def start_worker(tmp_path: Path, seconds: float) -> tuple[Env, subprocess.Popen[str], Path]:
    (tmp_path / "slow.py").write_text(SLOW)
    marker = tmp_path / "running.pid"
    argv = json.dumps([sys.executable, str(tmp_path / "slow.py"), str(marker), str(seconds)])
    cli = Env(tmp_path, WORKER_CONFIG + f"executors:\n  default: {{type: command, argv: {argv},"
                                        " timeout: 2m}\n")
    cli.submit()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from airgate.cli import main; main()", "worker",
         "--poll-interval", "0.2"], env={**os.environ, **cli.env}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not marker.exists() or not marker.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    return cli, proc, marker


@pytest.mark.slow
def test_sigterm_finishes_the_unit_at_hand_and_exits_0(tmp_path: Path) -> None:
    cli, proc, _ = start_worker(tmp_path, 1.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "event=stopping signal=SIGTERM" in err
    assert cli.status(2) == "completed"  # the unit it had begun
    assert cli.status(3) == "approved"  # not one begun after the signal


@pytest.mark.slow
def test_a_second_signal_exits_at_once_and_leaves_the_lease(tmp_path: Path) -> None:
    cli, proc, marker = start_worker(tmp_path, 60.0)
    try:
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 128 + signal.SIGTERM, err
        assert "event=exit_now" in err
        assert cli.status(2) == "running"  # its lease runs out for another worker
    finally:
        os.kill(int(marker.read_text()), signal.SIGKILL)


def test_a_pushed_execution_worker_governs_over_a_local_file(tmp_path: Path) -> None:
    cli = Env(tmp_path, WORKER_CONFIG.replace("alice: [", "alice: [global-admin, "))
    cli.submit()
    pushed = cli.run("config", "push", str(tmp_path / "airgate.yaml"), "--actor", "alice")
    assert pushed.exit_code == 0, pushed.stderr
    (tmp_path / "airgate.yaml").write_text("execution: inline\n")  # an analyst's own file
    approved = cli.run("approve", "1", "--actor", "alice")
    assert approved.exit_code == 0, approved.stderr
    assert "ignored" in approved.stderr and cli.status(1) == "approved"


@pytest.mark.postgres
@pytest.mark.slow
def test_two_worker_processes_and_an_analyst_share_one_postgres_queue(
        tmp_path: Path, postgres_url: str) -> None:
    files = [{"type": "file", "verdict": "malicious", "name": f"f{i}.exe",
              "fields": {"mdeDeviceId": "d1", "fileDetails": {"sha256": f"{i:04x}"}}}
             for i in range(8)]
    device = {"type": "device", "verdict": "malicious", "name": "ws1",
              "fields": {"mdeDeviceId": "d1"}}
    # On PostgreSQL the actor is the database user: here the test server's.
    user = postgres_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[0]
    cli = Env(tmp_path, f"execution: worker\nautomation: [{user}]\n"
                        f"users:\n  {user}: [global-admin, active-remediation]\n")
    cli.env = {"AIRGATE_DB": postgres_url, "AIRGATE_CONFIG": str(tmp_path / "airgate.yaml")}
    (tmp_path / "inv.json").write_text(json.dumps({
        "apiVersion": "airgate/v1", "kind": "Investigation", "id": "inv-pg",
        "evidence": [device, *files]}))
    pushed = cli.run("config", "push", str(tmp_path / "airgate.yaml"))
    assert pushed.exit_code == 0, pushed.stderr
    cli.submit()
    workers = [subprocess.Popen(
        [sys.executable, "-c", "from airgate.cli import main; main()", "worker",
         "--worker-id", name, "--poll-interval", "120", "--log-format", "json"],
        env={**os.environ, **cli.env}, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE) for name in ("w1", "w2")]
    try:
        approved = cli.run("approve", "1", "--comment", "confirmed")
        assert approved.exit_code == 0, approved.stderr
        deadline = time.monotonic() + 30
        while any(cli.status(i) != "completed" for i in range(1, 10)):
            assert time.monotonic() < deadline, [cli.status(i) for i in range(1, 10)]
            time.sleep(0.1)
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        logs = [proc.communicate(timeout=30)[1] for proc in workers]
    assert [proc.returncode for proc in workers] == [0, 0]
    units = [json.loads(line) for log in logs for line in log.splitlines()]
    ran = sorted(u["action_id"] for u in units if u["event"] == "unit")
    assert ran == list(range(1, 10))  # each action by one worker, once
    for i in range(1, 10):
        entries = json.loads(cli.run("show", str(i), "--format", "json").stdout)["ledger"]
        done = [e for e in entries if e["event"] == "completed"]
        assert len(done) == 1 and done[0]["details"]["worker"] in ("w1", "w2")
    assert "verified" in cli.run("ledger", "verify").stdout
