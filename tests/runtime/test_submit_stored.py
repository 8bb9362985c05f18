"""Submit's ``stored`` hook: called once the batch is written, before automatic actions
run, so that the server lets the next request in while executors are still answering."""

from __future__ import annotations

from typing import Any

import pytest

from airgate.runtime.executors.base import ExecResult
from runtime_helpers import decision, make_queue


class _Seen:
    name = "seen"

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def run(self, request: Any) -> ExecResult:
        self.calls.append("executor")
        return ExecResult(ok=True)


def test_stored_is_called_once_after_writing_and_before_automatic_actions_run(tmp_path):
    calls: list[str] = []
    queue, _ = make_queue(tmp_path, executors={"isolate_device": _Seen(calls)})

    def stored() -> None:
        # Written and committed by now: another connection sees the actions.
        calls.append(f"stored:{len(queue.get_many([1, 2]))}")

    outcomes = queue.submit([decision("dev1", required=False),
                             decision("dev2", required=False)], actor="bob", stored=stored)
    assert calls == ["stored:2", "executor", "executor"]
    assert [queue.get(o.action_id).status for o in outcomes] == ["completed", "completed"]


def test_stored_is_called_when_a_later_batch_fails(tmp_path, monkeypatch):
    from airgate.runtime import submit

    calls: list[str] = []
    queue, _ = make_queue(tmp_path, executors={"isolate_device": _Seen(calls)})
    monkeypatch.setattr(submit, "BATCH", 1)
    bad = decision("dev2")  # its batch fails below
    real = submit._write_batch

    def failing(q: Any, batch: Any, **kw: Any) -> Any:
        if batch[0].entity.key == "dev2":
            raise RuntimeError("disk gone")
        return real(q, batch, **kw)

    monkeypatch.setattr(submit, "_write_batch", failing)
    with pytest.raises(submit.SubmitIncomplete):
        queue.submit([decision("dev1", required=False), bad], actor="bob",
                     stored=lambda: calls.append("stored"))
    assert calls == ["stored", "executor"]
