"""The store: one data layer over SQLite (default) and PostgreSQL, with SQLAlchemy Core.

The only place airgate talks SQL. The queue asks for records and hands back
changes; every write happens inside ``Store.write()``, one transaction that
holds the write lock (BEGIN IMMEDIATE on SQLite; the ledger head row locked
FOR UPDATE on PostgreSQL), so a state change and its ledger entry commit
together or not at all, and two processes never interleave.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    exc,
    func,
    insert,
    inspect,
    make_url,
    select,
    text,
)

from airgate.errors import StoreError, UsageError
from airgate.runtime.clock import format_time
from airgate.runtime.store import schema as s
from airgate.runtime.store.listen import Listener
from airgate.runtime.store.tx import Tx

ENV_DB = "AIRGATE_DB"
ENV_DB_TIMEOUT = "AIRGATE_DB_TIMEOUT"
ENV_DB_SYNC = "AIRGATE_DB_SYNC"  # SQLite: full (default) or normal
DEFAULT_DB = "airgate.db"
DEFAULT_TIMEOUT = 10.0  # seconds a writer waits for a locked SQLite file
MAX_TIMEOUT = 3600.0  # more than an hour of waiting is a mistake, not a setting
ANALYZE_MIN_ROWS = 5000  # PostgreSQL: refresh statistics after this many new rows at least,
ANALYZE_GROWTH = 0.5  # and once the new rows are this fraction of the last analyzed size

# PostgreSQL errors worth trying again: the connection (08), the server shutting down or
# starting (57P), a serialization failure or deadlock (40), a statement time-out (57014),
# too many connections (53300).
TRANSIENT_STATES = ("08", "57P", "40001", "40P01", "57014", "53300")

__all__ = ["Store", "StoreNotFound", "StoreUnavailable", "Tx", "resolve_url", "timeout_from_env",
           "ENV_DB", "DEFAULT_DB"]


def resolve_url(target: str | os.PathLike[str] | None = None) -> str:
    """The database URL for ``--db`` (a path or a URL), else ``AIRGATE_DB``, else ./airgate.db."""
    raw = os.fspath(target) if target is not None else os.environ.get(ENV_DB, "") or DEFAULT_DB
    if "://" in raw:
        return raw
    return "sqlite:///" + str(Path(raw).expanduser().absolute())


class StoreNotFound(StoreError):
    """A command that only reads found no airgate store where it looked."""

    code = "store-not-found"


class StoreUnavailable(StoreError):
    """The database failed for a moment (connection lost, server restarting, a lock, a
    serialization failure, deadlock or statement time-out): nothing was committed, and
    the same call may succeed later. A worker retries it with backoff."""

    code = "store-unavailable"


class Store:
    """A handle on one airgate database; created and migrated on first use.

    ``create=False`` opens only a store that exists: a missing SQLite file, or a
    database without airgate's tables, raises :class:`StoreNotFound` and creates
    nothing (what read-only commands want). An existing store of an older schema
    is still migrated. Close the store (``close()``, or use it as a context
    manager) to release its connections.
    """

    def __init__(
        self, target: str | os.PathLike[str] | None = None, *, busy_timeout: float | None = None,
        create: bool = True, pool_size: int | None = None,
    ) -> None:
        self.url = resolve_url(target)
        # A worker sizes the pool by its concurrency and checks each connection before use,
        # so that one broken by a server restart is replaced instead of failing a unit.
        self.pool_size = pool_size
        if busy_timeout is None:
            busy_timeout = timeout_from_env()
        self.busy_timeout = busy_timeout
        self.sqlite = self.url.startswith("sqlite")
        self._grown = 0  # rows this process inserted since it last refreshed statistics
        self._analyzed_rows: float | None = None
        if not create and self.sqlite:
            path = _sqlite_path(self.url)
            if path and not Path(path).is_file():
                raise StoreNotFound(f"no airgate store found: {path} does not exist")
            if path and not _sqlite_holds_store(path):
                # Checked read-only: opening it for real would already write to the file.
                raise StoreNotFound(f"no airgate store found: {path} holds no airgate tables")
        self.engine = self._create_engine()
        try:
            self._migrate(create=create)
        except BaseException:
            # A store that failed to open must not leave its connections to the garbage
            # collector (Python 3.13 warns about every unclosed SQLite connection).
            self.engine.dispose()
            raise

    # ------------------------------------------------------------ set-up
    def _create_engine(self) -> Engine:
        try:
            if self.sqlite:
                path = _sqlite_path(self.url)
                if path and not Path(path).parent.is_dir():
                    parent = Path(path).parent
                    raise StoreError(f"cannot create the database: no directory {parent}")
                engine = create_engine(
                    self.url, connect_args={"timeout": self.busy_timeout}
                )
                _sqlite_transactions(engine, _sync_mode())
            else:
                args: dict[str, Any] = {}
                if make_url(self.url).get_driver_name() == "psycopg":
                    # psycopg prepares a statement after 5 runs, and PostgreSQL then may use
                    # one generic plan for every parameter list: for submit's lookup of
                    # (entity key, action type) pairs that plan walked every pending action
                    # (1 s per chunk of 500 at 100,000 actions). Plan each query for its
                    # values instead.
                    args["prepare_threshold"] = None
                pool: dict[str, Any] = {"pool_pre_ping": self.pool_size is not None}
                if self.pool_size is not None:
                    pool.update(pool_size=self.pool_size, max_overflow=2)
                engine = create_engine(self.url, connect_args=args, **pool)
        except (exc.ArgumentError, exc.NoSuchModuleError, ModuleNotFoundError) as err:
            raise StoreError(f"cannot open the database {_redact(self.url)}: {err}") from None
        return engine

    def listener(self) -> Listener:
        """What a worker waits on: PostgreSQL LISTEN/NOTIFY, a cheap poll on SQLite."""
        return Listener(self.engine, self.url, sqlite=self.sqlite)

    @property
    def display_url(self) -> str:
        """The store as a person should see it: a SQLite file's path, any password masked."""
        return _redact(self.url)

    def summary(self) -> dict[str, Any]:
        """What ``airgate status`` shows: schema version, actions by status, ledger head."""
        with self.read() as tx:
            a = s.actions.c
            counts = {str(status): int(n) for status, n in tx.conn.execute(
                select(a.status, func.count()).group_by(a.status).order_by(a.status)).all()}
            seq, head = tx.ledger_head()
            version = self._version(tx.conn)
        return {"store": self.display_url, "backend": "sqlite" if self.sqlite else "postgresql",
                "schema_version": version, "actions": sum(counts.values()),
                "by_status": counts, "ledger": {"seq": seq, "hash": head}}

    def close(self) -> None:
        """Close every pooled connection; the store can still be used (it reconnects)."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _migrate(self, *, create: bool = True) -> None:
        with self._guard():
            with self.engine.connect() as conn:
                found = self._version(conn)
            if found == s.LATEST:
                return
            if found == 0 and not create:
                raise StoreNotFound(
                    f"no airgate store found: {_redact(self.url)} holds no airgate tables")
            with self.engine.connect() as conn:
                conn = conn.execution_options(airgate_write=True)
                with conn.begin():
                    if not self.sqlite:
                        # Two first uses at once: one migrates, the other waits and sees it done.
                        conn.execute(text("SELECT pg_advisory_xact_lock(727372)"))
                    s.schema_version.create(conn, checkfirst=True)
                    current = self._version(conn)
                    if current > s.LATEST:
                        raise StoreError(
                            f"the database has schema version {current}, newer than this"
                            f" airgate knows ({s.LATEST}): upgrade airgate"
                        )
                    now = format_time(dt.datetime.now(dt.UTC))
                    for version, description, apply in s.MIGRATIONS:
                        if version > current:
                            apply(conn)
                            conn.execute(insert(s.schema_version).values(
                                version=version, description=description, applied_at=now))

    @staticmethod
    def _version(conn: Connection) -> int:
        if not inspect(conn).has_table("schema_version"):
            return 0
        value = conn.execute(select(s.schema_version.c.version).order_by(
            s.schema_version.c.version.desc()).limit(1)).scalar()
        return int(value or 0)

    def schema_version(self) -> int:
        with self._guard(), self.engine.connect() as conn:
            return self._version(conn)

    def database_user(self) -> str | None:
        """The authenticated user of a PostgreSQL connection (who acts there); None on
        SQLite, whose file permissions are its only authentication."""
        if self.sqlite:
            return None
        with self._guard(), self.engine.connect() as conn:
            return str(conn.execute(text("SELECT current_user")).scalar())

    # ------------------------------------------------------------ transactions
    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A read-only transaction that sees one snapshot of the store throughout.

        SQLite's WAL gives a reader that from its first read on. PostgreSQL's default
        (READ COMMITTED) takes a new one per statement, so a ledger read in chunks
        while others commit would mix two states: reads run at REPEATABLE READ,
        which for a transaction that writes nothing never fails.
        """
        with self._guard(), self.engine.connect() as conn:
            if not self.sqlite:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield Tx(conn, sqlite=self.sqlite)

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A write transaction holding the store's write lock; commits on success."""
        with self._guard(), self.engine.connect() as conn:
            conn = conn.execution_options(airgate_write=True)
            with conn.begin():
                tx = Tx(conn, sqlite=self.sqlite)
                tx.lock()
                yield tx
                tx.flush()
        if tx.inserted and not self.sqlite:
            self._grew(tx.inserted)

    def _grew(self, rows: int) -> None:
        """Refresh PostgreSQL's statistics once this process has grown the tables by half.

        Without statistics (autovacuum off, or not yet run after a bulk submit) the
        planner takes ``status = 'pending'`` for a selective condition and walks every
        pending action, for merging and for listing one investigation, instead of the
        entity and investigation indexes. ANALYZE samples a fixed number of rows (a
        fraction of a second at any size) and does not block writers. Best effort: a
        user not allowed to analyze just keeps the plans the server makes.
        """
        self._grown += rows
        if self._grown < ANALYZE_MIN_ROWS:
            return
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                if self._analyzed_rows is None:
                    found = conn.execute(text(
                        "SELECT reltuples FROM pg_class WHERE relname = 'actions'")).scalar()
                    self._analyzed_rows = max(float(found or 0), 0.0)
                if self._grown < ANALYZE_GROWTH * self._analyzed_rows:
                    return
                conn.execute(text("ANALYZE actions, evidence, ledger"))
                self._analyzed_rows += self._grown
                self._grown = 0
        except exc.SQLAlchemyError:
            return

    def record_once(self, key: str, action_id: int, operation: str, at: str,
                    result: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """The record executor's memory: keep ``result`` under ``key`` unless one is there."""
        with self.write() as tx:
            kept = tx.get_record(key)
            if kept is not None:
                return kept, False
            tx.put_record(key, action_id, operation, at, result)
            return {"at": at, "result": dict(result)}, True

    @contextmanager
    def _guard(self) -> Iterator[None]:
        # Database failures become a StoreError with a sentence a person can act on.
        try:
            yield
        except exc.OperationalError as err:
            message = str(err.orig) if err.orig is not None else str(err)
            if "locked" in message or "busy" in message:
                raise StoreUnavailable(
                    f"the database {_redact(self.url)} is locked by another process"
                    f" (waited {self.busy_timeout:g} s; set {ENV_DB_TIMEOUT} to wait longer)"
                ) from None
            if not self.sqlite and _transient(err):
                raise StoreUnavailable(f"the database {_redact(self.url)} failed for a moment:"
                                       f" {message.strip()}") from None
            raise StoreError(f"cannot use the database {_redact(self.url)}: {message}") from None
        except exc.InterfaceError as err:
            if not self.sqlite:  # the connection was closed under us
                raise StoreUnavailable(f"the database {_redact(self.url)} connection was"
                                       f" lost: {err.orig or err}") from None
            raise StoreError(f"database error on {_redact(self.url)}: {err}") from None
        except exc.DatabaseError as err:
            message = str(err.orig) if err.orig is not None else str(err)
            if not self.sqlite and getattr(err.orig, "sqlstate", None) and _transient(err):
                raise StoreUnavailable(f"the database {_redact(self.url)} failed for a moment:"
                                       f" {message.strip()}") from None
            raise StoreError(
                f"the database {_redact(self.url)} is damaged or not an airgate database:"
                f" {message}"
            ) from None
        except exc.SQLAlchemyError as err:
            raise StoreError(f"database error on {_redact(self.url)}: {err}") from None


def _transient(err: exc.DBAPIError) -> bool:
    if err.connection_invalidated:
        return True
    state = getattr(err.orig, "sqlstate", None)
    return state is None or str(state).startswith(TRANSIENT_STATES)


def _sqlite_transactions(engine: Engine, sync: str) -> None:
    """Take over BEGIN from pysqlite so that writers can BEGIN IMMEDIATE (SQLAlchemy recipe)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            # WAL lets readers go on while one writer works. FULL syncs the log at every
            # commit, so a committed change survives a power loss; NORMAL (AIRGATE_DB_SYNC)
            # survives a crash of airgate but may lose the last commits on a power loss.
            # Submit commits per batch of thousands, so FULL costs it a few per cent.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sync}")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("airgate_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def timeout_from_env() -> float:
    """``AIRGATE_DB_TIMEOUT``: seconds, a number from 0 to MAX_TIMEOUT (a usage error else)."""
    raw = os.environ.get(ENV_DB_TIMEOUT, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    # NaN fails both comparisons, so it is refused with the words and the infinities.
    if not 0 <= value <= MAX_TIMEOUT:
        raise UsageError(f"{ENV_DB_TIMEOUT} must be a number of seconds from 0 to"
                         f" {MAX_TIMEOUT:g}, not {raw[:40]!r}")
    return value


def _sync_mode() -> str:
    value = os.environ.get(ENV_DB_SYNC, "").strip().lower() or "full"
    if value not in ("full", "normal"):
        raise UsageError(f"{ENV_DB_SYNC} must be full or normal, not {value!r}")
    return value.upper()


def _sqlite_path(url: str) -> str:
    """The file of a SQLite URL; empty for an in-memory database."""
    path = url.split(":///", 1)[1] if ":///" in url else ""
    return "" if path in ("", ":memory:") else path.split("?", 1)[0]


def _sqlite_holds_store(path: str) -> bool:
    """Whether a SQLite file has airgate's tables; a file that is no database says yes, so
    that opening it reports the damage."""
    conn = sqlite3.connect(Path(path).absolute().as_uri() + "?mode=ro", uri=True)
    try:
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
        return found.fetchone() is not None
    except sqlite3.DatabaseError:
        return True
    finally:
        conn.close()


def _redact(url: str) -> str:
    # Never print a password that sits in a PostgreSQL URL, before the host or in the query.
    url = re.sub(r"([?&]password=)[^&]*", r"\1***", url, flags=re.IGNORECASE)
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///"):]
    return url
