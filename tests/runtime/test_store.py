"""The store: created on first use, versioned migrations, clear errors for bad files.

Most tests here are SQLite only on purpose: they write the file itself (garbage, a
truncated header, a held write lock, a missing directory); the PostgreSQL ones are marked."""

from __future__ import annotations

import sqlite3

import pytest

from airgate.errors import StoreError
from airgate.runtime.store import Store, resolve_url
from airgate.runtime.store.schema import LATEST
from runtime_helpers import connections, open_store, raw_sqlite


def test_created_and_migrated_on_first_use(tmp_path):
    with Store(tmp_path / "new.db") as store:
        assert store.schema_version() == LATEST
    with raw_sqlite(tmp_path / "new.db") as conn:
        rows = conn.execute("SELECT version, description FROM schema_version").fetchall()
    assert [r[0] for r in rows] == list(range(1, LATEST + 1))
    Store(tmp_path / "new.db").close()  # opening again migrates nothing


def test_newer_schema_is_refused(tmp_path):
    Store(tmp_path / "a.db").close()
    with raw_sqlite(tmp_path / "a.db") as conn:
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
    store = open_store(tmp_path / "l.db", busy_timeout=0.1)
    holder = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked by another process"), store.write():
            pass
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_write_rolls_back_on_error(tmp_path):
    store = open_store(tmp_path / "r.db")
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
def test_the_same_queue_on_postgresql(postgres_url):
    from airgate.runtime.clock import FixedClock
    from airgate.runtime.config import Config
    from airgate.runtime.ledger import verify
    from airgate.runtime.queue import Queue
    from runtime_helpers import USERS, decision

    store = Store(postgres_url)
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


def test_a_read_sees_one_snapshot_while_others_write(store_url):
    with Store(store_url) as store:
        _verify_while_writing(store)


@pytest.mark.postgres
def test_a_read_sees_one_snapshot_while_others_write_on_postgresql(postgres_url):
    store = Store(postgres_url)
    _verify_while_writing(store)
    store.close()


def test_create_false_opens_only_a_store_that_exists(tmp_path):
    from airgate.runtime.store import StoreNotFound

    with pytest.raises(StoreNotFound, match="no airgate store found: .*x.db does not exist"):
        Store(tmp_path / "x.db", create=False)
    assert not list(tmp_path.iterdir())
    Store(tmp_path / "x.db").close()
    with Store(tmp_path / "x.db", create=False) as store:
        assert store.schema_version() == LATEST


def test_a_store_that_fails_to_open_closes_its_connections(tmp_path):
    Store(tmp_path / "a.db").close()
    with raw_sqlite(tmp_path / "a.db") as conn:
        conn.execute("INSERT INTO schema_version VALUES (999, 'future', 'x')")
    with connections() as (opened, closed), pytest.raises(StoreError, match="newer"):
        Store(tmp_path / "a.db")
    assert opened and sorted(closed) == sorted(opened)


@pytest.mark.postgres
def test_create_false_finds_no_store_in_an_empty_postgresql_database(postgres_url):
    from airgate.runtime.store import StoreNotFound

    with pytest.raises(StoreNotFound, match="holds no airgate tables"):
        Store(postgres_url, create=False)
    with connections() as (opened, closed):
        Store(postgres_url).close()
    assert sorted(closed) == sorted(opened)
    with Store(postgres_url, create=False) as store:
        assert store.schema_version() == LATEST


@pytest.mark.parametrize("value", ["abc", "nan", "-0.5", "3601"])
def test_the_busy_timeout_from_the_environment_is_bounded(monkeypatch, value):
    from airgate.errors import UsageError
    from airgate.runtime.store.database import timeout_from_env

    monkeypatch.setenv("AIRGATE_DB_TIMEOUT", value)
    with pytest.raises(UsageError, match="AIRGATE_DB_TIMEOUT must be a number of seconds"):
        timeout_from_env()
    monkeypatch.setenv("AIRGATE_DB_TIMEOUT", "2.5")
    assert timeout_from_env() == 2.5


@pytest.mark.postgres
@pytest.mark.slow
def test_postgresql_tests_use_a_database_of_their_own_and_drop_it(tmp_path):
    # A session whose test fails: its database is still dropped, and the database the URL
    # names is never written to.
    import os
    import subprocess
    import sys

    from sqlalchemy import create_engine, inspect, make_url, text

    from runtime_helpers import ENV_POSTGRES, session_postgres_url

    named = make_url(os.environ.get(ENV_POSTGRES, "") or session_postgres_url())
    mine = make_url(session_postgres_url())
    assert mine.database != named.database and mine.host == named.host
    (tmp_path / "test_fails.py").write_text(
        "from airgate.runtime.store import Store\n\n"
        "def test_fails(postgres_url):\n"
        "    open(__file__ + '.db', 'w').write(postgres_url.rsplit('/', 1)[1])\n"
        "    Store(postgres_url)\n"
        "    assert False\n")
    tests = os.path.dirname(os.path.dirname(__file__))

    def tables_named() -> list[str]:
        engine = create_engine(named)
        try:
            with engine.connect() as conn:
                return sorted(inspect(conn).get_table_names())
        finally:
            engine.dispose()

    before = tables_named()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
         str(tmp_path / "test_fails.py")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": tests})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    used = (tmp_path / "test_fails.py.db").read_text()
    assert used.startswith("airgate_test_") and used != named.database
    engine = create_engine(named)
    try:
        with engine.connect() as conn:
            names = conn.execute(text("SELECT datname FROM pg_database")).scalars().all()
    finally:
        engine.dispose()
    assert used not in names
    assert tables_named() == before
