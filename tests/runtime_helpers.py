"""Shared builders for the runtime tests: decisions, a queue on a tmp SQLite file, and a
PostgreSQL database of the test session's own."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airgate.model import Approval, Decision, EntityRef, Evidence
from airgate.runtime.clock import FixedClock
from airgate.runtime.config import Config
from airgate.runtime.queue import Queue
from airgate.runtime.store import Store

START = "2024-05-01T12:00:00Z"
AUTOMATION_IDS = frozenset({"bob"})
USERS = {
    "alice": ("active-remediation",),
    "carol": ("active-remediation",),
    "dave": ("search-and-purge",),
    "erin": ("security-admin",),
    "root": ("global-admin",),
}
ENV_POSTGRES = "AIRGATE_TEST_POSTGRES_URL"
# Set by .ci/run: PostgreSQL tests must run, a skip for want of a server is a failure.
ENV_POSTGRES_REQUIRED = "AIRGATE_TEST_POSTGRES_REQUIRED"
POSTGRES_USED: list[str] = []  # one item per test that asked for the server
_OPEN: list[Store] = []  # stores made here; tests/conftest.py closes them after each test


def decision(
    key: str = "dev1",
    action: str = "isolate_device",
    *,
    entity_type: str = "device",
    investigation: str = "inv1",
    roles: tuple[str, ...] = ("active-remediation",),
    fields: dict[str, Any] | None = None,
    source: str = "automatedInvestigation",
    rules: tuple[str, ...] = ("r.isolate",),
    **approval: Any,
) -> Decision:
    extra = {k: approval.pop(k) for k in ("revert_after", "max_automatic_per_hour",
                                          "suppressed_by") if k in approval}
    ev = Evidence(investigation, entity_type, "malicious", key, f"name-{key}",
                  fields or {"id": key}, action_source=source)
    return Decision(investigation, EntityRef(entity_type, key, f"name-{key}"), action,
                    Approval(roles=roles, **approval), rules, evidence=ev, **extra)


def open_store(target: Any, **kwargs: Any) -> Store:
    """A store that is closed when the test ends (by the ``_close_stores`` fixture)."""
    store = Store(target, **kwargs)
    _OPEN.append(store)
    return store


def close_stores() -> None:
    while _OPEN:
        _OPEN.pop().close()


@contextmanager
def raw_sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection to a store's file that commits and is closed at the end
    (sqlite3's own ``with`` commits but leaves the connection open)."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


@contextmanager
def connections() -> Iterator[tuple[list[int], list[int]]]:
    """The ids of the database connections opened, and of those closed, inside the block."""
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    opened: list[int] = []
    closed: list[int] = []

    def on_connect(dbapi_conn: object, _record: object) -> None:
        opened.append(id(dbapi_conn))

    def on_close(dbapi_conn: object, _record: object) -> None:
        closed.append(id(dbapi_conn))

    event.listen(Pool, "connect", on_connect)
    event.listen(Pool, "close", on_close)
    try:
        yield opened, closed
    finally:
        event.remove(Pool, "connect", on_connect)
        event.remove(Pool, "close", on_close)


def make_queue(target: str | Path, *, users: dict[str, tuple[str, ...]] | None = None,
               **kwargs: Any) -> tuple[Queue, FixedClock]:
    """A queue on ``target``: the ``store_url`` fixture's store (SQLite or PostgreSQL), or
    a directory (a SQLite-only test's tmp_path), which holds the store as airgate.db."""
    clock = FixedClock(START)
    if isinstance(target, Path) and target.is_dir():
        target = target / "airgate.db"
    store = open_store(target, busy_timeout=2)
    # bob stands for the SOAR connector: his submissions keep the evidence's action source.
    config = kwargs.pop("config", None) or Config(users=USERS if users is None else users,
                                                  automation=AUTOMATION_IDS)
    return Queue(store, config=config, clock=clock, **kwargs), clock


def events(queue: Queue, action_id: int) -> list[tuple[str, str | None, str | None]]:
    return [(e.event, e.state_before, e.state_after) for e in queue.ledger_entries(action_id)]


# ----------------------------------------------------------------- PostgreSQL
# The tests never write to the database AIRGATE_TEST_POSTGRES_URL names: they create one of
# their own on its server, named uniquely per session, and drop it when the session ends
# (pytest_sessionfinish in tests/conftest.py, which runs on failures and interrupts too).
_session_db: dict[str, str] = {}


def _server_engine(url: str) -> Any:
    from sqlalchemy import create_engine

    return create_engine(url, isolation_level="AUTOCOMMIT")


def session_postgres_url() -> str:
    """The URL of this session's own database, created on first use; skips without a server."""
    import pytest

    url = os.environ.get(ENV_POSTGRES)
    required = bool(os.environ.get(ENV_POSTGRES_REQUIRED))
    if not url:
        if required:
            pytest.fail(f"{ENV_POSTGRES_REQUIRED} is set but {ENV_POSTGRES} is not")
        pytest.skip(f"set {ENV_POSTGRES} to run against PostgreSQL")
    if required:
        import psycopg  # noqa: F401  # CI: a missing driver is a failure, not a skip
    else:
        pytest.importorskip("psycopg")
    POSTGRES_USED.append(url)
    if "url" not in _session_db:
        from sqlalchemy import make_url, text

        name = f"airgate_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        engine = _server_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        _session_db.update(server=url, name=name, url=make_url(url).set(
            database=name).render_as_string(hide_password=False))
    return _session_db["url"]


def drop_session_database() -> str | None:
    """Drop this session's database if one was made; returns its name."""
    if "name" not in _session_db:
        return None
    from sqlalchemy import text

    close_stores()
    name, server = _session_db.pop("name"), _session_db.pop("server")
    _session_db.clear()
    engine = _server_engine(server)
    try:
        with engine.connect() as conn:
            # A connection a failed test left open must not keep the database alive.
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                              " WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        engine.dispose()
    return name


_template: dict[str, Any] = {}  # a freshly migrated store's tables and rows, once per session


def clean_postgres_store() -> str:
    """This session's PostgreSQL database holding a freshly migrated, empty airgate store.

    Dropping and migrating a store costs ~0.15 s; hundreds of tests each needing one would
    add a minute. The first call migrates and remembers every table's rows (the ledger head,
    the store's identity, the schema versions); later calls (~0.01 s) delete every row and
    put those rows back, with a new store identity so that no two tests share one. When a test
    changed the schema itself (dropped a table, downgraded the version), the tables no
    longer match and the store is rebuilt from scratch.
    """
    url = session_postgres_url()
    from sqlalchemy import create_engine, insert, inspect, text

    from airgate.runtime.store import schema

    close_stores()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            # A connection a previous test left open (a child process, a leaked engine)
            # must not hold a lock that would make TRUNCATE wait.
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                              " WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            tables = set(inspect(conn).get_table_names())
            if _template and tables == set(_template["rows"]):
                # DELETE, not TRUNCATE: on a few rows it takes 2 ms where TRUNCATE takes
                # 85 ms (it makes new files for every table); identifiers are airgate's own,
                # no sequence needs restarting.
                for table in reversed(schema.metadata.sorted_tables):
                    if table.name in tables:
                        conn.execute(table.delete())
                for table in schema.metadata.sorted_tables:
                    rows = _template["rows"].get(table.name)
                    if rows:
                        conn.execute(insert(table), rows)
                conn.execute(text("UPDATE ledger_meta SET store_id = :sid"),
                             {"sid": uuid.uuid4().hex})
                return url
    finally:
        engine.dispose()
    _template.clear()
    url = clean_postgres_url()
    Store(url).close()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            names = inspect(conn).get_table_names()
            known = {t.name: t for t in schema.metadata.sorted_tables}
            if set(names) <= set(known):  # tables airgate does not know: never cache
                _template["rows"] = {
                    name: [dict(r._mapping) for r in conn.execute(known[name].select())]
                    for name in names}
    finally:
        engine.dispose()
    return url


def clean_postgres_url() -> str:
    """This session's PostgreSQL database with airgate's tables dropped (a clean store for
    one test); skips the test without AIRGATE_TEST_POSTGRES_URL."""
    url = session_postgres_url()
    from sqlalchemy import create_engine, text

    close_stores()  # an earlier test's store must not hold locks on the tables
    engine = create_engine(url)
    try:
        with engine.begin() as conn:  # the session's own database: everything in it goes
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
    return url
