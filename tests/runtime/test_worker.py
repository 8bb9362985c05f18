"""The worker: with ``execution: worker`` approve and undo only record, and a worker claims
each unit (execute, undo, revert, expire, reconcile) once, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airgate.runtime.checkpoint import verify_store
from airgate.runtime.clock import FixedClock
from airgate.runtime.config import Config
from airgate.runtime.context import RECONCILE_GRACE
from airgate.runtime.executors import ExecRequest, ExecResult
from airgate.runtime.queue import Queue
from airgate.runtime.worker import Worker
from runtime_helpers import START, USERS, decision, open_store

AUTOMATION_IDS = frozenset({"bob"})


class Counting:
    """An idempotent fake executor: counts calls by (idempotency key, reconcile)."""

    name = "counting"
    timeout = 5

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, bool]] = Counter()
        self.lock = threading.Lock()

    def run(self, request: ExecRequest) -> ExecResult:
        with self.lock:
            self.calls[(request.idempotency_key, request.reconcile)] += 1
        return ExecResult(True, {"key": request.idempotency_key}, "done", self.name)

    def fresh(self) -> Counter[str]:
        """How many fresh (not reconciling) runs each key got."""
        out: Counter[str] = Counter()
        for (key, reconcile), n in self.calls.items():
            if not reconcile:
                out[key] += n
        return out


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "airgate.db")
    return str(request.getfixturevalue("postgres_url"))


def setup(target: str, execution: str = "worker") -> tuple[Queue, FixedClock, Counting]:
    clock = FixedClock(START)
    executor = Counting()
    config = Config(users=USERS, automation=AUTOMATION_IDS, execution=execution)
    queue = Queue(open_store(target, busy_timeout=5), config=config, clock=clock,
                  executors={"default": executor})
    return queue, clock, executor


def worker_for(queue: Queue, clock: FixedClock, executor: Any, name: str = "w1",
               **kwargs: Any) -> Worker:
    return Worker(queue.store, config=queue.config, clock=clock,
                  executors={"default": executor}, worker_id=name, **kwargs)


def events(queue: Queue, action_id: int) -> list[tuple[str, str | None]]:
    return [(e.event, e.details.get("worker")) for e in queue.ledger_entries(action_id)]


def test_worker_mode_approve_records_the_decision_and_the_worker_runs_it(target: str) -> None:
    queue, clock, executor = setup(target)
    queue.submit([decision("dev1")], actor="bob")
    [approved] = queue.approve([1], actor="alice")
    assert approved.status == "approved" and not executor.calls  # nothing ran inline
    report = worker_for(queue, clock, executor).run_once()
    assert report.ids("execute") == [1]
    done = queue.get(1)
    assert done.status == "completed"
    assert executor.fresh() == Counter({done.run_key: 1})
    assert events(queue, 1)[-2:] == [("started", "w1"), ("completed", "w1")]
    # On the approver's behalf: the ledger's started and completed entries are alice's.
    assert [e.actor for e in queue.ledger_entries(1)][-2:] == ["alice", "alice"]
    assert worker_for(queue, clock, executor).run_once().units == []  # nothing twice
    assert verify_store(queue.store).ok


def test_inline_mode_still_runs_in_the_approvers_process(target: str) -> None:
    queue, clock, executor = setup(target, execution="inline")
    queue.submit([decision("dev1")], actor="bob")
    [done] = queue.approve([1], actor="alice")
    assert done.status == "completed" and executor.fresh() == Counter({done.run_key: 1})
    assert worker_for(queue, clock, executor).run_once().units == []


def test_automatic_actions_wait_for_a_worker_in_worker_mode(target: str) -> None:
    queue, clock, executor = setup(target)
    [outcome] = queue.submit([decision("dev1", required=False)], actor="bob")
    assert outcome.action is not None and outcome.action.status == "approved"
    assert not executor.calls
    assert worker_for(queue, clock, executor).run_once().ids("execute") == [1]
    assert [e.actor for e in queue.ledger_entries(1)][-1] == "automation"


def test_once_drains_an_undo_request_a_due_revert_and_an_expiry(target: str) -> None:
    queue, clock, executor = setup(target)
    queue.submit([decision("dev1"), decision("dev2", revert_after=3600),
                  decision("dev3", expires_after=600)], actor="bob")
    queue.approve([1], actor="alice")
    queue.approve([2], actor="alice")
    worker = worker_for(queue, clock, executor)
    assert worker.run_once().ids("execute") == [1, 2]
    [requested] = queue.undo([1], actor="alice", comment="false positive")
    assert requested.status == "completed"  # only the request is recorded
    assert events(queue, 1)[-1] == ("requested", None)
    clock.advance(3601)
    assert queue.tick().as_dict() == {"expired": [3], "reverted": [], "reconciled": []}
    assert queue.get(2).status == "completed"  # the revert is a worker's, not this process's
    report = worker.run_once()
    assert (report.ids("undo"), report.ids("revert")) == ([1], [2])
    assert [queue.get(i).status for i in (1, 2, 3)] == ["undone", "undone", "expired"]
    assert queue.undone_by([1, 2]) == {1: ("alice", "undone"), 2: ("automation", "reverted")}
    assert {u["outcome"] for u in report.units} == {"undone"}
    assert verify_store(queue.store).ok


def test_once_expires_pending_actions_past_their_time(target: str) -> None:
    queue, clock, executor = setup(target)
    queue.submit([decision("dev1", expires_after=600), decision("dev2")], actor="bob")
    clock.advance(601)
    report = worker_for(queue, clock, executor).run_once()
    assert report.ids("expire") == [1] and report.units[0]["outcome"] == "expired"
    assert [queue.get(1).status, queue.get(2).status] == ["expired", "pending"]
    assert queue.ledger_entries(1)[-1].details["worker"] == "w1"


def test_a_dry_run_in_worker_mode_names_the_key_the_worker_will_use(target: str) -> None:
    class Planning(Counting):
        def plan(self, request: ExecRequest) -> str:
            return f"would send key {request.idempotency_key}"

    queue, clock, _ = setup(target)
    executor = Planning()
    queue = Queue(queue.store, config=queue.config, clock=clock,
                  executors={"default": executor})
    queue.submit([decision("dev1")], actor="bob")
    [planned] = queue.plan([queue.get(1)])
    queue.approve([1], actor="alice")
    worker_for(queue, clock, executor).run_once()
    assert planned == f"would send key {queue.get(1).run_key}"


def test_an_undo_request_without_its_ledger_entry_is_refused(target: str) -> None:
    queue, clock, executor = setup(target)
    queue.submit([decision("dev1")], actor="bob")
    queue.approve([1], actor="alice")
    worker_for(queue, clock, executor).run_once()
    with queue.store.write() as tx:  # a writer of the database forges a request row
        tx.request_undo(1, "mallory", "2024-05-01T12:00:00.000000Z")
    assert worker_for(queue, clock, executor).run_once().units == []
    assert queue.get(1).status == "completed"
    assert queue.ledger_entries(1)[-1].event == "refused"


class Died(BaseException):
    """The worker process dies in the middle of a run (nothing catches it)."""


class DiesOnce(Counting):
    def run(self, request: ExecRequest) -> ExecResult:
        super().run(request)
        if not request.reconcile:
            raise Died
        return ExecResult(True, {"key": request.idempotency_key}, "done", self.name)


def test_a_dead_workers_lease_is_taken_over_under_the_same_run_key(target: str) -> None:
    queue, clock, _ = setup(target)
    executor = DiesOnce()
    queue.submit([decision("dev1")], actor="bob")
    queue.approve([1], actor="alice")
    with pytest.raises(Died):
        worker_for(queue, clock, executor, "w1", lease_seconds=30).run_once()
    left = queue.get(1)
    assert left.status == "running"
    second = worker_for(queue, clock, executor, "w2", lease_seconds=30)
    assert second.run_once().units == []  # the lease still holds
    clock.advance(31)
    report = second.run_once()
    assert report.ids("reconcile") == [1] and report.units[0]["attempt"] == 2
    done = queue.get(1)
    assert done.status == "completed" and done.run_key == left.run_key
    assert executor.calls == Counter({(left.run_key, False): 1, (left.run_key, True): 1})
    assert events(queue, 1)[-2:] == [("started", "w1"), ("completed", "w2")]
    assert queue.ledger_entries(1)[-1].details["reconciled"] is True
    assert verify_store(queue.store).ok


def test_an_inline_run_left_running_is_reconciled_after_the_grace(target: str) -> None:
    queue, clock, executor = setup(target, execution="inline")

    class Unknown(Counting):
        def run(self, request: ExecRequest) -> ExecResult:
            super().run(request)
            if request.reconcile:
                return ExecResult(True, None, "found it done", self.name)
            return ExecResult(False, None, "no answer", self.name, unknown=True)

    unknown = Unknown()
    queue = Queue(queue.store, config=queue.config, clock=clock,
                  executors={"default": unknown})
    queue.submit([decision("dev1")], actor="bob")
    [left] = queue.approve([1], actor="alice")
    assert left.status == "running"
    worker = worker_for(queue, clock, unknown)
    assert worker.run_once().units == []  # the approver's process may still be at it
    clock.advance(RECONCILE_GRACE + Counting.timeout + 1)
    assert worker.run_once().ids("reconcile") == [1]
    assert queue.get(1).status == "completed"
    assert unknown.calls == Counter({(left.run_key, False): 1, (left.run_key, True): 1})


def test_two_workers_share_a_queue_and_run_each_action_once(target: str) -> None:
    queue, clock, executor = setup(target)
    queue.submit([decision(f"dev{i}", required=False) for i in range(24)], actor="bob")
    reports = []
    workers = [worker_for(queue, clock, executor, f"w{i}", concurrency=2) for i in (1, 2)]
    threads = [threading.Thread(target=lambda w=w: reports.append(w.run_once()))
               for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ran = [i for r in reports for i in r.ids("execute")]
    assert sorted(ran) == list(range(1, 25))  # every action, none twice
    assert sorted(executor.fresh().values()) == [1] * 24 and len(executor.calls) == 24
    assert {a.status for a in queue.get_many(range(1, 25))} == {"completed"}
    assert verify_store(queue.store).ok


@pytest.mark.postgres
def test_a_notify_wakes_an_idle_worker_before_its_poll(postgres_url: str) -> None:
    queue, clock, executor = setup(postgres_url)
    queue.submit([decision("dev1")], actor="bob")
    worker = worker_for(queue, clock, executor, poll_interval=600)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        queue.approve([1], actor="alice")
        for _ in range(200):  # a 600 s poll would never get there: the NOTIFY does
            if queue.get(1).status == "completed":
                break
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join()
    assert queue.get(1).status == "completed"


def test_the_worker_governs_by_the_pushed_config_and_picks_up_a_new_push(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import airgate.runtime.worker as worker_module
    from airgate.runtime.governance import push_config

    monkeypatch.setattr(worker_module, "CONFIG_REFRESH", 0.0)
    queue, clock, executor = setup(str(tmp_path / "airgate.db"))
    first = {"users": {"root": ["global-admin"]}, "execution": "worker"}
    push_config(queue.store, first, actor="root", at="2024-05-01T12:00:00.000000Z")
    worker = worker_for(queue, clock, executor)
    worker.run_once()
    assert worker.queue.config.governed_by is not None and not worker.queue.config.executors
    second = {**first, "executors": {"isolate_device": {"type": "command", "argv": ["true"]}}}
    push_config(queue.store, second, actor="root", at="2024-05-01T12:01:00.000000Z")
    worker.run_once()
    assert list(worker.queue.config.executors) == ["isolate_device"]


@pytest.mark.slow
def test_a_heartbeat_keeps_a_slow_run_from_being_taken_over(tmp_path: Path) -> None:
    class Slow(Counting):
        def run(self, request: ExecRequest) -> ExecResult:
            started.set()
            time.sleep(2.5)  # longer than two leases
            return super().run(request)

    started = threading.Event()
    executor = Slow()
    config = Config(users=USERS, automation=AUTOMATION_IDS, execution="worker")
    queue = Queue(open_store(tmp_path / "airgate.db", busy_timeout=5), config=config,
                  executors={"default": executor})  # the real clock: leases do run out
    queue.submit([decision("dev1", required=False)], actor="bob")
    first = Worker(queue.store, config=config, executors={"default": executor},
                   worker_id="w1", lease_seconds=1)
    second = Worker(queue.store, config=config, executors={"default": executor},
                    worker_id="w2", lease_seconds=1)
    runner = threading.Thread(target=first.run_once)
    runner.start()
    started.wait()
    taken = []
    while runner.is_alive():
        taken += second.run_once().units
        time.sleep(0.2)
    runner.join()
    assert taken == [] and queue.get(1).status == "completed"
    assert len(executor.calls) == 1 and not any(r for _, r in executor.calls)
