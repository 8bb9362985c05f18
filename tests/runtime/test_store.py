"""The store: created on first use, versioned migrations, clear errors for bad files."""

from __future__ import annotations

import sqlite3

import pytest

from airgate.errors import StoreError
from airgate.runtime.store import Store, resolve_url
from airgate.runtime.store.schema import LATEST


def test_created_and_migrated_on_first_use(tmp_path):
    store = Store(tmp_path / "new.db")
    assert store.schema_version() == LATEST
    with sqlite3.connect(tmp_path / "new.db") as conn:
        rows = conn.execute("SELECT version, description FROM schema_version").fetchall()
    assert [r[0] for r in rows] == list(range(1, LATEST + 1))
    Store(tmp_path / "new.db").close()  # opening again migrates nothing


def test_newer_schema_is_refused(tmp_path):
    Store(tmp_path / "a.db").close()
    with sqlite3.connect(tmp_path / "a.db") as conn:
        conn.execute("INSERT INTO schema_version VALUES (999, 'future', 'x')")
    with pytest.raises(StoreError, match="schema version 999, newer"):
        Store(tmp_path / "a.db")


def test_a_file_that_is_not_a_database(tmp_path):
    (tmp_path / "bad.db").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="damaged or not an airgate database"):
        Store(tmp_path / "bad.db")


def test_a_truncated_database(tmp_path):
    Store(tmp_path / "t.db").close()
    raw = (tmp_path / "t.db").read_bytes()
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"t.db{suffix}").unlink(missing_ok=True)
    (tmp_path / "t.db").write_bytes(raw[:100] + b"\0" * 50)
    with pytest.raises(StoreError, match="t.db"):
        Store(tmp_path / "t.db")


def test_missing_directory(tmp_path):
    with pytest.raises(StoreError, match="no directory"):
        Store(tmp_path / "nope" / "x.db")


def test_a_locked_database_is_a_clear_error(tmp_path):
    store = Store(tmp_path / "l.db", busy_timeout=0.1)
    holder = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked by another process"), store.write():
            pass
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_write_rolls_back_on_error(tmp_path):
    store = Store(tmp_path / "r.db")
    with pytest.raises(RuntimeError, match="boom"), store.write() as tx:
        tx.insert_approval(1, "alice", None, "t")
        raise RuntimeError("boom")
    with store.read() as tx:
        assert tx.approvals_for(1) == []


@pytest.mark.parametrize(("target", "env", "expected_end"), [
    ("x.db", None, "/x.db"),
    (None, "/data/from-env.db", "/data/from-env.db"),
    (None, None, "/airgate.db"),
    ("postgresql+psycopg://u@h/db", None, "postgresql+psycopg://u@h/db"),
])
def test_url_resolution(monkeypatch, tmp_path, target, env, expected_end):
    monkeypatch.chdir(tmp_path)
    if env:
        monkeypatch.setenv("AIRGATE_DB", env)
    else:
        monkeypatch.delenv("AIRGATE_DB", raising=False)
    assert resolve_url(target).endswith(expected_end)


def test_unknown_driver_is_a_store_error():
    with pytest.raises(StoreError, match="cannot open the database"):
        Store("nosuchdb://x/y")


@pytest.mark.postgres
def test_the_same_queue_on_postgresql(tmp_path):
    from airgate.runtime.clock import FixedClock
    from airgate.runtime.config import Config
    from airgate.runtime.ledger import verify
    from airgate.runtime.queue import Queue
    from runtime_helpers import USERS, clean_postgres_url, decision

    url = clean_postgres_url()
    store = Store(url)
    queue = Queue(store, config=Config(users=USERS), clock=FixedClock("2024-05-01T12:00:00Z"))
    out = queue.submit([decision("pa"), decision("pb", required=False)], actor="bob")
    assert [o.action.status for o in out] == ["pending", "completed"]
    assert queue.approve([1], actor="alice")[0].status == "completed"
    with store.read() as tx:
        assert verify(tx.iter_ledger(), head=tx.ledger_head()).ok
    store.close()


def _verify_while_writing(store):
    from airgate.runtime.clock import FixedClock
    from airgate.runtime.config import Config
    from airgate.runtime.ledger import verify_rows
    from airgate.runtime.queue import Queue
    from runtime_helpers import USERS, decision

    queue = Queue(store, config=Config(users=USERS), clock=FixedClock("2024-05-01T12:00:00Z"))
    queue.submit([decision(f"a{i}") for i in range(5)], actor="bob")
    with store.read() as tx:
        head = tx.ledger_head()
        rows = tx.iter_ledger_rows(chunk=2)
        first = next(rows)
        # Another writer commits while the verification is half way through.
        queue.submit([decision(f"b{i}") for i in range(5)], actor="bob")
        result = verify_rows([first, *rows], head=head)
    assert result.ok, result.message
    assert result.count == 5
    with store.read() as tx:
        assert verify_rows(tx.iter_ledger_rows(), head=tx.ledger_head()).count == 10


def test_a_read_sees_one_snapshot_while_others_write(tmp_path):
    store = Store(tmp_path / "airgate.db")
    _verify_while_writing(store)
    store.close()


@pytest.mark.postgres
def test_a_read_sees_one_snapshot_while_others_write_on_postgresql():
    from runtime_helpers import clean_postgres_url

    store = Store(clean_postgres_url())
    _verify_while_writing(store)
    store.close()
