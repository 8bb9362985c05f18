"""Real processes: two approvals at once run the executor once; a killed run is reconciled."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from airgate.runtime.config import Config, ExecutorConfig
from airgate.runtime.executors import ExecRequest, ExecResult, RecordExecutor
from runtime_helpers import decision, make_queue

CLI = [sys.executable, "-c", "from airgate.cli import main; main()"]

# Appends the idempotency key to a log; a key already logged is replayed, not redone.
# With the kill flag set it kills its parent (the airgate process) mid-run.
EXECUTOR = """\
import json, os, signal, sys, time
req = json.load(sys.stdin)
log = sys.argv[1]
seen = open(log).read().split() if os.path.exists(log) else []
if req["idempotency_key"] in seen:
    print(json.dumps({"replayed": True}))
    sys.exit(0)
with open(log, "a") as f:
    f.write(req["idempotency_key"] + "\\n")
time.sleep(0.2)
if os.path.exists(sys.argv[2]):
    os.kill(os.getppid(), signal.SIGKILL)
print(json.dumps({"done": True}))
"""


# The CLI tests here are SQLite only: on PostgreSQL the CLI's actor is the database user
# and the executors come from a pushed config, so two approvers are two database roles.
# test_worker_concurrency.py races processes on PostgreSQL.
def setup(tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    script = tmp_path / "executor.py"
    script.write_text(EXECUTOR)
    log, kill = tmp_path / "runs.log", tmp_path / "kill"
    (tmp_path / "airgate.yaml").write_text(textwrap.dedent(f"""\
        users: {{alice: [active-remediation], carol: [active-remediation]}}
        executors:
          isolate_device: {{type: command, argv: [{sys.executable!r}, {str(script)!r},
                            {str(log)!r}, {str(kill)!r}], timeout: 30s}}
    """))
    env = {"AIRGATE_DB": str(tmp_path / "q.db"), "AIRGATE_CONFIG": str(tmp_path / "airgate.yaml"),
           "AIRGATE_NOW": "2024-05-01T12:00:00Z", "PATH": "/usr/bin:/bin"}
    return env, log, kill


def seed(db: str) -> None:
    from airgate.runtime.clock import FixedClock
    from airgate.runtime.governance import init_demo
    from airgate.runtime.queue import Queue
    from airgate.runtime.store import Store

    queue = Queue(Store(db), clock=FixedClock("2024-05-01T12:00:00Z"))
    init_demo(queue.store, actor="bob", at="2024-05-01T12:00:00.000000Z")  # AIRGATE_NOW is set
    queue.submit([decision()], actor="bob")
    queue.store.close()


@pytest.mark.slow
def test_two_processes_approving_at_once_run_the_executor_once(tmp_path):
    env, log, _ = setup(tmp_path)
    seed(str(tmp_path / "q.db"))
    procs = [subprocess.Popen([*CLI, "approve", "1", "--actor", who], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for who in ("alice", "carol")]
    results = []
    for p in procs:
        _, err = p.communicate(timeout=60)
        results.append((p.returncode, err))
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, err in results if code == 1)
    assert "cannot approve action 1" in loser and "Traceback" not in loser
    assert len(log.read_text().split()) == 1
    show = subprocess.run([*CLI, "show", "1", "--format", "json"], env=env,
                          capture_output=True, text=True, check=True)
    story = json.loads(show.stdout)
    assert story["action"]["status"] == "completed"
    assert len(story["approvals"]) == 1


@pytest.mark.slow
def test_a_killed_run_is_reconciled_by_tick_without_running_twice(tmp_path):
    env, log, kill = setup(tmp_path)
    seed(str(tmp_path / "q.db"))
    kill.write_text("x")
    died = subprocess.run([*CLI, "approve", "1", "--actor", "alice"], env=env,
                          capture_output=True, text=True)
    assert died.returncode == -9
    kill.unlink()
    status = subprocess.run([*CLI, "show", "1", "--format", "json"], env=env,
                            capture_output=True, text=True, check=True)
    assert json.loads(status.stdout)["action"]["status"] == "running"
    soon = subprocess.run([*CLI, "tick", "--format", "json"], env=env,
                          capture_output=True, text=True, check=True)
    assert json.loads(soon.stdout)["reconciled"] == []  # may still be running: leave it
    later = {**env, "AIRGATE_NOW": "2024-05-01T12:05:00Z"}
    tick = subprocess.run([*CLI, "tick", "--format", "json"], env=later,
                          capture_output=True, text=True, check=True)
    assert json.loads(tick.stdout)["reconciled"] == [1]
    story = json.loads(subprocess.run([*CLI, "show", "1", "--format", "json"], env=later,
                                      capture_output=True, text=True, check=True).stdout)
    assert story["action"]["status"] == "completed"
    assert story["action"]["result"] == {"replayed": True}
    assert story["ledger"][-1]["details"]["reconciled"] is True
    assert len(log.read_text().split()) == 1


class Crash(BaseException):
    """Stands for the process dying right after the executor did its work."""


class CrashAfter:
    name = "record"

    def __init__(self, inner: RecordExecutor) -> None:
        self.inner = inner

    def run(self, request: ExecRequest) -> ExecResult:
        self.inner.run(request)
        raise Crash


def test_record_executor_is_reconciled_from_its_record(store_url):
    queue, clock = make_queue(store_url)
    record = RecordExecutor(queue.store, clock)
    queue._executors["default"] = CrashAfter(record)
    queue.submit([decision()], actor="bob")
    with pytest.raises(Crash):
        queue.approve([1], actor="alice")
    assert queue.get(1).status == "running"
    queue._executors["default"] = record
    assert queue.tick().reconciled == []
    clock.advance(minutes=3)
    assert queue.tick().reconciled == [1]
    done = queue.get(1)
    assert done.status == "completed"
    assert queue.ledger_entries(1)[-1].details["result"]["message"] == "already recorded"


def test_config_with_a_command_executor_parses(tmp_path):
    env, _, _ = setup(tmp_path)
    from airgate.runtime.config import load_config

    config = load_config(env["AIRGATE_CONFIG"])
    assert config.executor_for("isolate_device").type == "command"
    assert config.executor_for("isolate_device").timeout == 30
    assert config.executor_for("contain_device") == ExecutorConfig()
    assert isinstance(config, Config)
