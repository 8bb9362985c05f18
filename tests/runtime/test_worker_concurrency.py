"""Real processes on one PostgreSQL store: 4 ``airgate worker`` processes, 4 approvers and a
submitter; thousands of actions approved, rejected, undone and expired at once, and one
worker killed with SIGKILL midway and started again. Afterwards every unit of work ran
exactly once, every approval and ledger entry is there, each status is what its ledger
says, and ``airgate ledger verify`` passes: one hash chain under concurrent writers."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from worker_load import APPROVERS, fate, number_of

from airgate.runtime.clock import format_time
from airgate.runtime.governance import push_config
from airgate.runtime.ledger import fold
from runtime_helpers import clean_postgres_store, open_store

ACTIONS = int(os.environ.get("AIRGATE_TEST_LOAD_ACTIONS", "5000"))  # smaller to debug
WORKERS = 4
SLOW = 1001  # dev1001 (approved): its run lingers after its work, and its worker is killed
DEADLINE = 240.0  # seconds: a hung run fails instead of blocking CI
HERE = Path(__file__).parent
CLI = [sys.executable, "-c", "from airgate.cli import main; main()"]

# The executor: a shell script (a few ms a run, where Python would take 30). It logs the
# idempotency key of each run it carries out; a key already logged is a reconciliation
# of a run it did, answered without doing it again. Appends of one short line are atomic.
# The run of dev{SLOW} does its work, says so in a marker file and then takes 5 s to
# answer: the test kills its worker then, in the middle of a run.
EXECUTOR = """\
req=$(cat)
key=$(printf '%s' "$req" | sed -n 's/.*"idempotency_key": *"\\([^"]*\\)".*/\\1/p')
[ -n "$key" ] || { echo "no key" >&2; exit 1; }
if grep -qxF "$key" "$1" 2>/dev/null; then echo '{"replayed": true}'; exit 0; fi
printf '%s\\n' "$key" >> "$1"
case "$req" in *'"dev@SLOW@"'*) printf '%s' "$key" > "$2.tmp"; mv "$2.tmp" "$2"; sleep 5;; esac
echo '{"done": true}'
""".replace("@SLOW@", str(SLOW))


def push(url: str, script: Path, log: Path, marker: Path) -> None:
    users = {name: ["active-remediation"] for name in APPROVERS}
    users["root"] = ["global-admin"]
    store = open_store(url)
    push_config(store, {
        "users": users, "automation": ["soar"], "execution": "worker",
        "executors": {"default": {"type": "command", "argv": ["/bin/sh", str(script), str(log),
                                                            str(marker)],
                                  "timeout": "30s"}},
    }, actor="root", at=format_time(dt.datetime.now(dt.UTC)))
    store.close()


def start_worker(url: str, name: str, logs: Path) -> subprocess.Popen[bytes]:
    with (logs / f"{name}.log").open("wb") as err:  # the child keeps its own copy
        return subprocess.Popen(
            [*CLI, "worker", "--db", url, "--poll-interval", "0.5", "--lease", "3",
             "--worker-id", name, "--log-format", "json"],
            env=env(), stdout=subprocess.DEVNULL, stderr=err)


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])}


def load(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(HERE / "worker_load.py"), *args], env=env())


def started_by(url: str, action_id: int) -> str:
    store = open_store(url)
    with store.read() as tx:
        [started] = [e for e in tx.ledger_for(action_id) if e.event == "started"]
    store.close()
    return str(started.details["worker"])


def settled(url: str) -> bool:
    store = open_store(url)
    by_status = store.summary()["by_status"]
    store.close()
    return not any(by_status.get(s) for s in ("pending", "approved", "running"))


@pytest.mark.postgres
@pytest.mark.slow
def test_workers_approvers_and_a_submitter_at_once_do_each_unit_once(tmp_path):
    url = clean_postgres_store()
    script, log, flag = tmp_path / "executor.sh", tmp_path / "runs.log", tmp_path / "submitted"
    marker = tmp_path / "slow-run"
    script.write_text(EXECUTOR)
    push(url, script, log, marker)
    began = time.monotonic()
    workers = {f"w{i}": start_worker(url, f"w{i}", tmp_path) for i in range(WORKERS)}
    submitter = load("submit", url, str(ACTIONS), str(flag))
    approvers = [load("approve", url, str(n), str(flag), str(tmp_path / f"approver{n}.jsonl"),
                      str(DEADLINE)) for n in range(len(APPROVERS))]
    try:
        while not marker.exists():
            assert time.monotonic() - began < DEADLINE, "the slow run never started"
            time.sleep(0.05)
        slow_key = marker.read_text()
        slow_id = int(slow_key.split(":")[1])
        victim = started_by(url, slow_id)  # the worker in the middle of that run
        workers[victim].send_signal(signal.SIGKILL)  # its claim and lease left behind
        assert workers[victim].wait(10) == -signal.SIGKILL
        workers[f"{victim}-restarted"] = start_worker(url, f"{victim}-restarted", tmp_path)
        assert submitter.wait(DEADLINE) == 0
        for p in approvers:
            assert p.wait(DEADLINE) == 0
        while not settled(url):  # the expiries and the last undos
            assert time.monotonic() - began < DEADLINE, "work left undone"
            time.sleep(0.5)
    finally:
        for p in [submitter, *approvers, *workers.values()]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in workers.values():
            p.wait(30)
        for p in [submitter, *approvers]:
            p.wait(30)
    elapsed = time.monotonic() - began
    for name, p in workers.items():
        if name != victim:
            assert p.returncode == 0, (tmp_path / f"{name}.log").read_text()[-2000:]

    store = open_store(url)
    with store.read() as tx:
        actions = tx.actions_range(1, 10**9)
        ledger = tx.ledger_for_range(1, 10**9)
        approvals = tx.approvals_range(1, 10**9)
    assert len(actions) == ACTIONS

    # Each unit of work ran exactly once, under the key its ledger names, and no other.
    runs = Counter(log.read_text().split())
    assert max(runs.values()) == 1, [k for k, n in runs.items() if n > 1][:5]
    expected = Counter({"completed": 0, "undone": 0, "rejected": 0, "expired": 0})
    wanted = {"approve": "completed", "undo": "undone", "reject": "rejected",
              "expire": "expired"}
    keys: set[str] = set()
    for a in actions:
        state = fold(a.id, ledger[a.id])
        assert state.problem is None, (a.id, state.problem)
        assert state.status == a.status, (a.id, a.status, state.status)
        assert a.status == wanted[fate(number_of(a.entity_key))], (a.id, a.entity_key)
        expected[a.status] += 1
        started = [e.details["idempotency_key"] for e in ledger[a.id] if e.event == "started"]
        assert len(started) == len(set(started)), (a.id, started)
        keys.update(started)
        assert len(started) == {"completed": 1, "undone": 2}.get(a.status, 0), (a.id, started)
    assert set(runs) == keys
    # The killed worker's run was taken over under its key: asked again, not redone.
    slow = ledger[slow_id]
    assert [e.details.get("worker") for e in slow if e.event == "started"] == [victim]
    [completed] = [e for e in slow if e.event == "completed"]
    assert completed.details["worker"] != victim
    assert completed.details["result"]["output"] == {"replayed": True}
    assert runs[slow_key] == 1
    assert all(expected.values()), expected

    # Every approval, rejection and undo request an approver made is in the store.
    done: dict[str, list[tuple[str, int]]] = {"approved": [], "rejected": [], "undo": []}
    for n in range(len(APPROVERS)):
        for line in (tmp_path / f"approver{n}.jsonl").read_text().splitlines():
            record = json.loads(line)
            for kind in done:
                done[kind] += [(record["actor"], i) for i in record.get(kind, ())]
    assert len(done["approved"]) == expected["completed"] + expected["undone"]
    assert len(done["rejected"]) == expected["rejected"]
    assert len(done["undo"]) == expected["undone"]
    for actor, i in done["approved"]:
        assert approvals[i] == [(actor, None)]
        assert [e.actor for e in ledger[i] if e.event == "approved"] == [actor]
    for actor, i in done["rejected"]:
        assert [e.actor for e in ledger[i] if e.event == "rejected"] == [actor]
    for actor, i in done["undo"]:
        assert [e.actor for e in ledger[i] if e.event == "requested"] == [actor]
    store.close()

    verify = subprocess.run([*CLI, "ledger", "verify", "--db", url], env=env(),
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    print(f"{ACTIONS} actions, {sum(runs.values())} executor runs in {elapsed:.1f} s")
