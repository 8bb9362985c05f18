"""Executors: record (idempotent on its key) and command (argv, JSON on stdin, no shell)."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from airgate.runtime.config import Config, ExecutorConfig
from airgate.runtime.executors import CommandExecutor, ExecRequest, RecordExecutor
from runtime_helpers import decision, make_queue, open_store


def request(op: str = "apply", key: str = "k1") -> ExecRequest:
    return ExecRequest(op, {"id": 1, "action_type": "isolate_device"},
                       {"type": "device", "key": "$(rm -rf /); name", "name": "`x`"}, key)


def script(tmp_path, body: str) -> tuple[str, ...]:
    path = tmp_path / "exec.py"
    path.write_text(textwrap.dedent(body))
    return (sys.executable, str(path))


def test_record_executor_records_once_per_key(tmp_path):
    executor = RecordExecutor(open_store(tmp_path / "r.db"))
    first = executor.run(request())
    again = executor.run(request())
    assert first.ok and again.ok
    assert (first.message, again.message) == ("recorded", "already recorded")
    assert first.output == again.output
    assert executor.run(request(key="k2")).message == "recorded"


def test_command_gets_json_on_stdin_and_its_json_is_kept(tmp_path):
    argv = script(tmp_path, """
        import json, sys
        req = json.load(sys.stdin)
        print(json.dumps({"argv": sys.argv[1:], "req": req}))
    """)
    result = CommandExecutor(argv, 10).run(request())
    assert result.ok
    assert result.output["argv"] == []  # evidence never reaches the command line
    assert result.output["req"]["entity"]["key"] == "$(rm -rf /); name"
    assert result.output["req"]["operation"] == "apply"
    assert result.output["req"]["idempotency_key"] == "k1"


@pytest.mark.parametrize(("body", "ok", "message"), [
    ("import sys; sys.stderr.write('device offline'); sys.exit(3)", False,
     "exit status 3: device offline"),
    ("print('plain text')", True, ""),
    ("import time; time.sleep(5)", False, "timed out after 0.5 s"),
])
def test_command_outcomes(tmp_path, body, ok, message):
    result = CommandExecutor(script(tmp_path, body), 0.5).run(request())
    assert (result.ok, result.message) == (ok, message)


def test_missing_program_is_a_failure_not_a_crash(tmp_path):
    result = CommandExecutor((str(tmp_path / "missing"),), 1).run(request())
    assert not result.ok and "cannot run" in result.message


def test_queue_keeps_a_failed_command_message(tmp_path, store_url):
    argv = script(tmp_path, "import sys; sys.stderr.write('nope'); sys.exit(1)")
    config = Config(users={"alice": ("active-remediation",)},
                    executors={"isolate_device": ExecutorConfig("command", argv, 5)})
    queue, _ = make_queue(store_url, config=config)
    queue.submit([decision()], actor="bob")
    [a] = queue.approve([1], actor="alice")
    assert (a.status, a.error) == ("failed", "exit status 1: nope")
    assert queue.investigations()[0]["status"] == "failed"


def test_undo_runs_the_same_command_with_operation_undo(tmp_path, store_url):
    log = tmp_path / "ops.log"
    argv = script(tmp_path, f"""
        import json, sys
        req = json.load(sys.stdin)
        open({str(log)!r}, "a").write(req["operation"] + "\\n")
    """)
    config = Config(users={"alice": ("active-remediation",)},
                    executors={"default": ExecutorConfig("command", argv, 5)})
    queue, _ = make_queue(store_url, config=config)
    queue.submit([decision(required=False)], actor="bob")
    queue.undo([1], actor="alice")
    assert log.read_text().split() == ["apply", "undo"]


def test_a_failed_undo_leaves_the_action_completed(tmp_path, store_url):
    flag = tmp_path / "fail"
    argv = script(tmp_path, f"""
        import os, sys
        sys.exit(1 if os.path.exists({str(flag)!r}) else 0)
    """)
    config = Config(users={"alice": ("active-remediation",)},
                    executors={"default": ExecutorConfig("command", argv, 5)})
    queue, _ = make_queue(store_url, config=config)
    queue.submit([decision(required=False)], actor="bob")
    flag.write_text("x")
    [a] = queue.undo([1], actor="alice")
    assert a.status == "completed" and a.error.startswith("exit status 1")
    flag.unlink()
    assert queue.undo([1], actor="alice")[0].status == "undone"


def test_request_json_is_plain_data():
    doc = json.loads(request().as_json())
    assert set(doc) == {"operation", "action", "entity", "idempotency_key", "reconcile"}
