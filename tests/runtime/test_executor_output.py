"""Whatever an executor prints or answers, the run's outcome is recorded: never an action
left running by a report the ledger cannot hash or the store cannot hold."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from airgate.runtime.clock import FixedClock
from airgate.runtime.config import Config, ExecutorConfig
from airgate.runtime.context import OutcomeNotRecorded
from airgate.runtime.executors import CommandExecutor, ExecRequest, ExecResult
from airgate.runtime.ledger import verify
from airgate.runtime.queue import Queue
from airgate.runtime.store import Store
from runtime_helpers import START, USERS, decision, make_queue, open_store

# Writes its raw stdout (and stderr, and exit status) from files, and logs each key it is
# given: "applied KEY" the first time, "replayed KEY" when it has seen the key already.
PROGRAM = """\
import json, os, sys
req = json.load(sys.stdin)
log, out, err, code = sys.argv[1:5]
seen = open(log).read().split() if os.path.exists(log) else []
key = req["idempotency_key"]
with open(log, "a") as f:
    f.write(("replayed " if key in seen else "applied ") + key + "\\n")
sys.stdout.buffer.write(open(out, "rb").read())
sys.stderr.buffer.write(open(err, "rb").read())
sys.exit(int(code))
"""


def program(tmp_path: Path, stdout: bytes, stderr: bytes = b"", code: int = 0) -> tuple[
        tuple[str, ...], Path]:
    script, log = tmp_path / "prog.py", tmp_path / "runs.log"
    script.write_text(PROGRAM)
    (tmp_path / "out").write_bytes(stdout)
    (tmp_path / "err").write_bytes(stderr)
    return (sys.executable, str(script), str(log), str(tmp_path / "out"),
            str(tmp_path / "err"), str(code)), log


def command_config(argv: tuple[str, ...]) -> Config:
    return Config(users=USERS, executors={"isolate_device": ExecutorConfig("command", argv, 5)})


def assert_stored_cleanly(queue: Queue) -> None:
    with queue.store.read() as tx:
        result = verify(tx.iter_ledger(), head=tx.ledger_head())
    assert result.ok, result.message
    # What `show --format json` prints: strict JSON, UTF-8 encodable.
    json.dumps(queue.show(1), allow_nan=False, ensure_ascii=False).encode("utf-8")


ODD_STDOUT = [
    pytest.param(b'{"x": NaN}\n', '{"x": NaN}\n', id="nan"),
    pytest.param(b'{"x": 1e400}\n', '{"x": 1e400}\n', id="1e400"),
    pytest.param(b'{"x": -Infinity}\n', '{"x": -Infinity}\n', id="infinity"),
    pytest.param(b'{"x": "\\ud800"}\n', '{"x": "\\ud800"}\n', id="lone-surrogate"),
    pytest.param(b'{"x": 1, "x": 2}', '{"x": 1, "x": 2}', id="duplicate-key"),
    pytest.param(b"[" * 5000 + b"]" * 5000, "[" * 5000 + "]" * 5000, id="deep"),
    pytest.param(b"\xff\xfe\xed\xa0\x80 done", "\\xff\\xfe\\xed\\xa0\\x80 done", id="not-utf-8"),
    pytest.param(b"a\x00b\x1b[2J", "a\\x00b\x1b[2J", id="nul"),
]


@pytest.mark.parametrize(("stdout", "kept"), ODD_STDOUT)
def test_odd_stdout_of_a_done_run_is_kept_as_text_and_the_action_completes(
        tmp_path, stdout, kept, store_url):
    argv, log = program(tmp_path, stdout)
    queue, clock = make_queue(store_url, config=command_config(argv))
    queue.submit([decision()], actor="bob")
    [action] = queue.approve([1], actor="alice")
    assert action.status == "completed"
    assert action.result == {"stdout": kept}
    assert queue.ledger_entries(1)[-1].details["result"]["output"] == {"stdout": kept}
    assert_stored_cleanly(queue)
    clock.advance(minutes=10)
    assert queue.tick().reconciled == []
    assert log.read_text().split() == ["applied", "airgate:1:apply:2"]


def test_strict_json_stdout_is_still_kept_as_json(tmp_path, store_url):
    argv, _ = program(tmp_path, b'{"isolated": true, "note": "a\\u0000b", "n": 1.5}')
    queue, _ = make_queue(store_url, config=command_config(argv))
    queue.submit([decision()], actor="bob")
    [action] = queue.approve([1], actor="alice")
    assert action.result == {"isolated": True, "note": "a\x00b", "n": 1.5}
    assert_stored_cleanly(queue)


def test_odd_stderr_of_a_failed_run_is_kept_escaped(tmp_path, store_url):
    argv, _ = program(tmp_path, b"", b"bad \x00 \xed\xa0\x80 \x1b[31m", code=2)
    queue, _ = make_queue(store_url, config=command_config(argv))
    queue.submit([decision()], actor="bob")
    [action] = queue.approve([1], actor="alice")
    assert action.status == "failed"
    assert action.error == "exit status 2: bad \\x00 \\xed\\xa0\\x80 \x1b[31m"
    assert_stored_cleanly(queue)


class Odd:
    """An in-process executor answering values no JSON encoder or database takes as they are."""

    name = "odd\ud800"

    def __init__(self, output: object, message: str = "") -> None:
        self.output, self.message = output, message

    def run(self, request: ExecRequest) -> ExecResult:
        return ExecResult(True, self.output, self.message, self.name)


@pytest.mark.parametrize("output", [
    pytest.param({"x": float("nan")}, id="nan"),
    pytest.param({"x": float("inf")}, id="inf"),
    pytest.param({"\ud800": 1}, id="surrogate-key"),
    pytest.param({1: "a", "b": 2}, id="int-key"),
    pytest.param({"x": {1, 2}}, id="set"),
])
def test_an_unstorable_answer_is_kept_as_text(store_url, output):
    queue, _ = make_queue(store_url, executors={"default": Odd(output, "note \ud800\x00")})
    queue.submit([decision()], actor="bob")
    [action] = queue.approve([1], actor="alice")
    assert action.status == "completed"
    assert set(action.result) == {"unstorable", "why"}
    entry = queue.ledger_entries(1)[-1]
    assert entry.details["result"]["message"] == "note \\ud800\\x00"
    assert entry.details["result"]["executor"] == "odd\\ud800"
    assert_stored_cleanly(queue)


def test_a_crashing_executor_is_recorded_failed(store_url):
    class Broken:
        name = "broken"

        def run(self, request: ExecRequest) -> ExecResult:
            raise RuntimeError("bug \ud800")

    queue, _ = make_queue(store_url, executors={"default": Broken()})
    queue.submit([decision()], actor="bob")
    [action] = queue.approve([1], actor="alice")
    assert (action.status, action.error) == ("failed", "executor error: bug \\ud800")
    assert_stored_cleanly(queue)


class LocksTheStore:
    """A real command, after which another process holds the database's write lock."""

    name = "command"
    timeout = 5.0

    def __init__(self, inner: CommandExecutor, db: Path) -> None:
        self.inner, self.db = inner, db
        self.lock: sqlite3.Connection | None = None

    def run(self, request: ExecRequest) -> ExecResult:
        result = self.inner.run(request)
        if self.lock is None:
            self.lock = sqlite3.connect(self.db, isolation_level=None)
            self.lock.execute("BEGIN IMMEDIATE")
        return result

    def release(self) -> None:
        assert self.lock is not None
        self.lock.execute("ROLLBACK")
        self.lock.close()


def test_an_outcome_the_store_cannot_record_is_reconciled_with_the_same_key(tmp_path):
    # SQLite only: a second connection holding the file's write lock makes the store
    # unwritable for the busy timeout (PostgreSQL writers queue on the ledger head instead).
    argv, log = program(tmp_path, b'{"isolated": true}')
    db = tmp_path / "airgate.db"
    clock = FixedClock(START)
    locking = LocksTheStore(CommandExecutor(argv, 5), db)
    queue = Queue(open_store(db, busy_timeout=0.2), config=Config(users=USERS), clock=clock,
                  executors={"default": locking})
    queue.submit([decision("d1"), decision("d2")], actor="bob")
    with pytest.raises(OutcomeNotRecorded, match=(
            r"action 1: the executor ran \(done\) but its outcome could not be recorded: .*"
            r"locked.* It stays running under idempotency key airgate:1:apply:2; `airgate tick`"
            r" finishes it with that key; not run yet, left running for `airgate tick`:"
            r" action 2$")):
        queue.approve([1, 2], actor="alice")
    locking.release()
    assert [queue.get(i).status for i in (1, 2)] == ["running", "running"]
    assert log.read_text().splitlines() == ["applied airgate:1:apply:2"]
    clock.advance(minutes=2)
    assert queue.tick().reconciled == [1, 2]
    assert log.read_text().splitlines() == [
        "applied airgate:1:apply:2", "replayed airgate:1:apply:2", "applied airgate:2:apply:2"]
    assert [queue.get(i).status for i in (1, 2)] == ["completed", "completed"]
    assert queue.ledger_entries(1)[-1].details["reconciled"] is True


CLI = [sys.executable, "-c", "from airgate.cli import main; main()"]


@pytest.mark.slow
def test_odd_output_through_the_cli_completes_once_and_tick_does_not_rerun(tmp_path):
    argv, log = program(tmp_path, b'{"x": NaN, "y": 1e400, "z": "\\ud800"}')
    (tmp_path / "airgate.yaml").write_text(textwrap.dedent(f"""\
        users: {{alice: [active-remediation]}}
        executors:
          isolate_device: {{type: command, argv: {json.dumps(list(argv))}, timeout: 5s}}
    """))
    env = {"AIRGATE_DB": str(tmp_path / "q.db"), "AIRGATE_CONFIG": str(tmp_path / "airgate.yaml"),
           "AIRGATE_NOW": START, "PATH": "/usr/bin:/bin"}

    def run(*args: str, now: str = START) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args], env={**env, "AIRGATE_NOW": now},
                              capture_output=True, text=True)

    assert run("init", "--demo").returncode == 0  # the clock is pinned: a demo store allows it
    seeded = Queue(Store(tmp_path / "q.db"), clock=FixedClock(START))
    seeded.submit([decision()], actor="bob")
    seeded.store.close()

    approved = run("approve", "1", "--actor", "alice")
    assert (approved.returncode, approved.stderr) == (0, "")
    for _ in range(2):
        tick = run("tick", "--format", "json", now="2024-05-01T13:00:00Z")
        assert tick.returncode == 0, tick.stderr
        assert json.loads(tick.stdout)["reconciled"] == []
    show = run("show", "1", "--format", "json")
    story = json.loads(show.stdout)
    assert story["action"]["status"] == "completed"
    assert story["action"]["result"] == {"stdout": '{"x": NaN, "y": 1e400, "z": "\\ud800"}'}
    assert run("ledger", "verify").returncode == 0
    assert log.read_text().splitlines() == ["applied airgate:1:apply:2"]


@pytest.mark.postgres
def test_nul_and_odd_bytes_are_recorded_on_postgresql(tmp_path):
    from runtime_helpers import clean_postgres_url

    argv, _ = program(tmp_path, b"\x00 {NaN", b"gone \x00 \xff", code=3)
    store = Store(clean_postgres_url())
    queue = Queue(store, config=command_config(argv), clock=FixedClock(START))
    queue.submit([decision("p1")], actor="bob")
    [action] = queue.approve([1], actor="alice")
    assert (action.status, action.error) == ("failed", "exit status 3: gone \\x00 \\xff")
    assert_stored_cleanly(queue)
    store.close()
