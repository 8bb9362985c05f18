"""How a worker waits for work without a busy loop.

PostgreSQL: a connection of its own (autocommit) that ``LISTEN``s on
``airgate_work``; writers ``NOTIFY`` inside the transaction that makes work
runnable, so the wake-up arrives when that work is committed. The wait still
ends after ``timeout`` (the poll fallback: a notification lost while the
connection was down, or time-driven work such as an expiry coming due). A lost
connection is reopened at the next wait, never raised.

SQLite has no notifications: the wait checks the ledger head (one indexed row,
changed by every write) a few times a second and ends early when it moved.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import Engine, make_url, select

from airgate.runtime.store import schema as s
from airgate.runtime.store.work import CHANNEL

SLICE = 0.5  # seconds: the longest a wait ignores ``stop``
SQLITE_CHECK = 0.25  # seconds between two looks at a SQLite ledger head


class Listener:
    """Waits until work may have arrived, ``timeout`` passes or ``stop`` is set."""

    def __init__(self, engine: Engine, url: str, *, sqlite: bool) -> None:
        self._engine = engine
        self._url = url
        self._sqlite = sqlite
        self._conn: Any = None
        self._head: int | None = None
        self.failures = 0  # connection faults seen (the worker logs them)
        self.last_error: str | None = None

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """True when woken by new work; False after ``timeout`` or on ``stop``."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (stop is not None and stop.is_set()):
                return False
            step = min(left, SLICE)
            if self._sqlite:
                if self._sqlite_moved():
                    return True
                if _sleep(min(step, SQLITE_CHECK), stop):
                    return False
            elif self._pg_woken(step, stop):
                return True

    # ------------------------------------------------------------ PostgreSQL
    def _pg_woken(self, step: float, stop: threading.Event | None) -> bool:
        try:
            if self._conn is None:
                self._connect()
            woken = False
            for _ in self._conn.notifies(timeout=step, stop_after=1):
                woken = True
            return woken
        except Exception as exc:  # the server went away: reconnect at the next wait
            self.failures += 1
            self.last_error = type(exc).__name__
            self.close()
            _sleep(step, stop)
            return False

    def _connect(self) -> None:
        import psycopg

        url = make_url(self._url).set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=5)
        conn.execute(f"LISTEN {CHANNEL}")
        self._conn = conn

    # ------------------------------------------------------------ SQLite
    def _sqlite_moved(self) -> bool:
        try:
            with self._engine.connect() as conn:
                seq = int(conn.execute(select(s.ledger_head.c.seq)).scalar() or 0)
                conn.rollback()
        except Exception as exc:  # locked or gone for a moment: look again next time
            self.failures += 1
            self.last_error = type(exc).__name__
            return False
        moved = self._head is not None and seq != self._head
        self._head = seq
        return moved

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken: nothing left to release
                self.last_error = "close"


def _sleep(seconds: float, stop: threading.Event | None) -> bool:
    """Sleep, or return True at once when ``stop`` is set."""
    if stop is None:
        time.sleep(seconds)
        return False
    return stop.wait(seconds)
