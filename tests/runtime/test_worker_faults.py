"""Database faults under a worker: retried with backoff and logged, never a half-written
state or a second fresh run; the worker reconnects by itself."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from test_worker import Counting

from airgate.errors import StoreError
from airgate.runtime.checkpoint import verify_store
from airgate.runtime.config import Config
from airgate.runtime.queue import Queue
from airgate.runtime.store import StoreUnavailable
from airgate.runtime.worker import Worker, backoff
from runtime_helpers import USERS, decision, open_store

CONFIG = Config(users=USERS, automation=frozenset({"bob"}), execution="worker")


def test_backoff_grows_is_capped_and_jittered() -> None:
    first = [backoff(0) for _ in range(50)]
    assert all(0.1 <= d <= 0.2 for d in first) and len(set(first)) > 1
    assert all(5 <= backoff(30) <= 10 for _ in range(20))


def test_a_locked_sqlite_store_is_retried_until_it_frees(tmp_path: Path) -> None:
    path = tmp_path / "airgate.db"
    store = open_store(path, busy_timeout=0.1)
    queue = Queue(store, config=CONFIG)
    queue.submit([decision("dev1", required=False)], actor="bob")
    held = threading.Event()

    def hold_the_lock() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            held.set()
            time.sleep(1.0)
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    locker = threading.Thread(target=hold_the_lock)
    locker.start()
    held.wait()
    logged: list[dict[str, Any]] = []
    executor = Counting()
    report = Worker(store, config=CONFIG, executors={"default": executor},
                    log=lambda r: logged.append(dict(r))).run_once()
    locker.join()
    assert report.ids("execute") == [1] and report.retried >= 1 and report.errors == 0
    assert queue.get(1).status == "completed"
    retries = [r for r in logged if r["event"] == "db_retry"]
    assert retries and "locked" in retries[0]["error"] and retries[0]["retry_in_ms"] > 0
    assert verify_store(store).ok


@pytest.mark.postgres
@pytest.mark.parametrize(("statements", "transient"), [
    (["SET LOCAL statement_timeout = 1", "SELECT pg_sleep(1)"], True),  # 57014
    (["DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$"], True),  # serialization
    (["DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40P01'; END $$"], True),  # deadlock
    (["DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '57P01'; END $$"], True),  # admin shutdown
    (["SELECT no_such_column FROM actions"], False),
    (["DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '23505'; END $$"], False),  # unique
])
def test_postgres_faults_are_told_apart(postgres_url: str, statements: list[str],
                                        transient: bool) -> None:
    store = open_store(postgres_url)
    with pytest.raises(StoreError) as raised, store.read() as tx:
        for statement in statements:
            tx.conn.execute(text(statement))
    assert isinstance(raised.value, StoreUnavailable) is transient


@pytest.mark.postgres
@pytest.mark.slow
def test_terminated_connections_lose_nothing_and_run_nothing_twice(postgres_url: str) -> None:
    queue = Queue(open_store(postgres_url), config=CONFIG)
    count = 20
    queue.submit([decision(f"dev{i}", required=False) for i in range(count)], actor="bob")
    store = open_store(postgres_url, pool_size=4)
    executor = Counting()
    logged: list[dict[str, Any]] = []
    lock = threading.Lock()

    def log(record: Any) -> None:
        with lock:
            logged.append(dict(record))

    # A short lease: a claim whose commit was cut off (committed, but the worker was not
    # told) is taken over by the worker itself seconds later.
    worker = Worker(store, config=CONFIG, executors={"default": executor}, concurrency=2,
                    poll_interval=0.2, lease_seconds=2, log=log)
    stop, done = threading.Event(), threading.Event()
    killed: list[int] = []
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")

    def kill_connections() -> None:
        while not done.wait(0.15):
            with admin.connect() as conn:
                killed.extend(conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalars())

    def settled() -> bool:
        try:
            return all(a.status == "completed" for a in queue.get_many(range(1, count + 1)))
        except StoreError:  # the killer got this reader's connection too
            return False

    runner = threading.Thread(target=worker.run, args=(stop,))
    killer = threading.Thread(target=kill_connections)
    runner.start()
    killer.start()
    try:
        deadline = time.monotonic() + 60
        while not settled() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        done.set()
        killer.join()
        stop.set()
        runner.join()
        admin.dispose()
        # The killer may have cut this reader's pooled connections after its last look:
        # the checks below read through new ones.
        queue.store.engine.dispose()
    assert killed, "the test never terminated a connection"
    assert settled()
    # Each action was asked under its one run key, and never twice as a fresh run (a claim
    # whose commit was cut off is taken over: the executor is asked to reconcile instead).
    keys = {a.id: a.run_key for a in queue.get_many(range(1, count + 1))}
    assert {key for key, _ in executor.calls} == set(keys.values())
    assert max(executor.fresh().values()) == 1
    for action_id in range(1, count + 1):
        finished = [e for e in queue.ledger_entries(action_id) if e.event == "completed"]
        assert len(finished) == 1
    assert any(r["event"] in ("db_retry", "listen_fault") for r in logged)
    assert verify_store(queue.store).ok
