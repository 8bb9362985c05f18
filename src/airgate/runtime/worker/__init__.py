"""The worker: a process of its own that carries out the queue's runnable work.

With ``execution: worker`` an approver's process only records decisions; workers
(``airgate worker``, or ``Worker.run`` in a server's thread) claim and do the work:
approved actions to execute, undo requests, due timed reverts, pending actions past
their expiry, and runs left behind by a process that died. Several workers share one
PostgreSQL store; on SQLite one worker serves one machine.

Each unit is claimed in one write transaction: its rows read ``FOR UPDATE SKIP
LOCKED``, its ``started`` ledger entry (carrying a fresh run key) and a lease with a
deadline written together. The executor then runs outside any transaction while a
heartbeat pushes the deadline on. A worker that dies leaves its lease to run out;
another then takes the action over and asks the executor again with ``reconcile``
under the run key the ledger already holds, never a new one, so a unit is carried
out once however many workers and crashes it sees. Every ledger entry a worker
writes carries ``worker`` (its id) in its details.

Database faults (a dropped connection, a server restart, a serialization failure,
deadlock or statement time-out) surface as ``StoreUnavailable``: nothing half
written, and the step is retried with capped exponential backoff and jitter, and
logged. A run whose outcome could not be recorded is finished under its key.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, TypeVar

from airgate.errors import AirgateError, StoreError
from airgate.runtime import approvals
from airgate.runtime.clock import Clock, format_time
from airgate.runtime.config import Config
from airgate.runtime.context import OutcomeNotRecorded
from airgate.runtime.governance import read_settings
from airgate.runtime.queue import Queue
from airgate.runtime.records import RUNNING, ActionRecord, stamped
from airgate.runtime.worker.claims import Claim, claim_next
from airgate.runtime.worker.report import (
    UNITS,
    WorkReport,
    backoff,
    default_worker_id,
    ms,
    outcome,
    short,
)

if TYPE_CHECKING:
    from airgate.runtime.executors import Executor
    from airgate.runtime.store import Store

DEFAULT_LEASE = 30.0  # seconds a claim holds without a heartbeat
DEFAULT_POLL = 5.0  # seconds between two looks when no notification arrives
CONFIG_REFRESH = 10.0  # seconds between two looks for a newly pushed config
MAX_RETRIES = 8  # tries of one step on a database fault before the pass gives up

Log = Callable[[Mapping[str, Any]], None]
T = TypeVar("T")


class Worker:
    """Claims runnable work from ``store`` and does it (see the module docstring).

    ``run_once()`` drains what is due now; ``run(stop)`` loops until ``stop`` is set,
    finishing the unit at hand. ``log`` receives one mapping per unit and per fault."""

    def __init__(
        self, store: Store, *, config: Config, clock: Clock | None = None,
        executors: Mapping[str, Executor] | None = None, worker_id: str | None = None,
        concurrency: int = 1, poll_interval: float = DEFAULT_POLL,
        lease_seconds: float = DEFAULT_LEASE, log: Log | None = None,
    ) -> None:
        self.store = store
        self.queue = Queue(store, config=config, clock=clock, executors=executors)
        self.id = worker_id or default_worker_id()
        self.concurrency = max(1, int(concurrency))
        self.poll_interval = max(0.05, float(poll_interval))
        self.lease_seconds = max(1.0, float(lease_seconds))
        self.max_retries = MAX_RETRIES
        self._log = log or (lambda record: None)
        self._report_lock = threading.Lock()
        self._expiring = threading.Lock()
        self._wake = threading.Condition()
        self._generation = 0
        self._local = config
        self._config_seen: tuple[str | None, str | None] | None = None
        self._config_at = -CONFIG_REFRESH  # the first pass reads the store's config

    # ------------------------------------------------------------ the loops
    def run_once(self) -> WorkReport:
        """Do everything due now (with ``concurrency`` threads) and return what was done."""
        report = WorkReport()
        def drain() -> None:
            self._drain(report, None)

        self._threads(drain)
        return report

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set; the unit at hand is finished first. Waits on the
        store's listener (LISTEN/NOTIFY on PostgreSQL) with ``poll_interval`` as fallback."""
        report = WorkReport()
        listener = self.store.listener()
        self._emit({"event": "worker_started", "concurrency": self.concurrency,
                    "store": self.store.display_url})

        def loop() -> None:
            while not stop.is_set():
                with self._wake:
                    seen = self._generation
                try:
                    worked = self._drain(report, stop)
                except Exception as exc:  # never let a thread die: log, back off, go on
                    self._emit({"event": "error", "error": short(exc)})
                    stop.wait(backoff(3))
                    continue
                with self._wake:
                    if not worked and not stop.is_set() and self._generation == seen:
                        self._wake.wait(self.poll_interval)

        threads = [threading.Thread(target=self._stamped(loop), name=f"airgate-worker-{i}")
                   for i in range(self.concurrency)]
        for t in threads:
            t.start()
        faults = 0
        try:
            while not stop.is_set() and any(t.is_alive() for t in threads):
                if listener.wait(self.poll_interval, stop):
                    self._poke()
                if listener.failures > faults:  # its connection dropped: polls until back
                    faults = listener.failures
                    self._emit({"event": "listen_fault", "error": listener.last_error,
                                "note": "reconnecting; polling meanwhile"})
        finally:
            self._poke()
            for t in threads:
                t.join()
            listener.close()
            if listener.failures:
                self._emit({"event": "listen_faults", "count": listener.failures,
                            "error": listener.last_error})
            self._emit({"event": "worker_stopped", "units": len(report.units),
                        "retried": report.retried, "errors": report.errors})

    def _poke(self) -> None:
        with self._wake:
            self._generation += 1
            self._wake.notify_all()

    def _threads(self, body: Callable[[], None]) -> None:
        if self.concurrency == 1:
            self._stamped(body)()
            return
        threads = [threading.Thread(target=self._stamped(body)) for _ in range(self.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _stamped(self, body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            with stamped({"worker": self.id}):
                body()
        return run

    def _drain(self, report: WorkReport, stop: threading.Event | None) -> bool:
        """Expire what is due, then claim and carry out units until none is left (or
        ``stop``). True when it did anything. A database fault that outlasts its retries
        ends the pass: it is counted and logged, the next pass tries again."""
        worked = False
        try:
            self._retrying(self._refresh_config, report)
            worked = self._expire(report)
            while stop is None or not stop.is_set():
                claim = self._retrying(self._claim, report)
                if claim is None:
                    break
                self._carry_out(claim, report)
                worked = True
        except StoreError as exc:
            with self._report_lock:
                report.errors += 1
            self._emit({"event": "db_gave_up", "error": short(exc)})
        except AirgateError as exc:  # a race the claim lost, a refused transition
            self._emit({"event": "error", "error": short(exc)})
        return worked

    def _refresh_config(self) -> None:
        """Govern by the config pushed into the store, as the CLI does, and pick up one
        pushed since this worker started (new executors, ``execution``): a long-running
        worker must not act on a replaced config. On PostgreSQL without a pushed config
        the given file's executors are not used (a file never governs a shared store). A
        stored config that does not match its ledger entry raises: nothing is run."""
        if time.monotonic() - self._config_at < CONFIG_REFRESH:
            return
        settings = read_settings(self.store)
        self._config_at = time.monotonic()
        seen = (settings.config_by, settings.config_at)
        if seen == self._config_seen:
            return
        if settings.config is not None:
            self.queue.config = settings.apply(self._local)
        elif not self.store.sqlite:
            self.queue.config = Config(store=self._local.store, file=self._local.file,
                                       execution=self._local.execution)
        if self._config_seen is not None:
            self._emit({"event": "config_reloaded", "pushed_by": settings.config_by,
                        "pushed_at": settings.config_at})
        self._config_seen = seen

    # ------------------------------------------------------------ units
    def _expire(self, report: WorkReport) -> bool:
        if not self._expiring.acquire(blocking=False):
            return False  # another thread of this worker is at it
        try:
            started = time.monotonic()
            expired = self._retrying(lambda: approvals.expire_due(self.queue), report)
            if not expired:
                return False
            with self.store.read() as tx:
                found = tx.get_actions(expired)
            each = ms(started) // max(1, len(expired))
            for action_id in expired:
                a = found.get(action_id)
                self._record_unit(report, "expire", action_id, a.action_type if a else "",
                                  "expired", each, 1)
            return True
        finally:
            self._expiring.release()

    def _claim(self) -> Claim | None:
        return claim_next(self.queue, self.id, self.lease_seconds)

    def _carry_out(self, claim: Claim, report: WorkReport) -> None:
        started = time.monotonic()
        with self._heartbeat(claim.action.id):
            done = self._execute(claim, report)
        unknown = done.status == RUNNING
        retry_at = None
        if unknown:  # asked again after the time `tick` would wait, not at every poll
            retry_at = format_time(self.queue.now() + self.queue.reconcile_wait(
                done.action_type))
        # Should releasing fail, the lease runs out by itself: the outcome is recorded.
        with suppress(StoreError):
            self._retrying(lambda: self._release(done.id, retry_at), report)
        self._record_unit(report, claim.kind, done.id, done.action_type,
                          outcome(claim.kind, done), ms(started), claim.attempt)

    def _execute(self, claim: Claim, report: WorkReport) -> ActionRecord:
        reconcile = claim.reconcile
        action = claim.action
        action_id = action.id
        for attempt in range(self.max_retries + 1):
            try:
                return self.queue.execute([action], actor=claim.actor, reconcile=reconcile,
                                          event_done=claim.event_done)[0]
            except (StoreError, OutcomeNotRecorded) as exc:
                if attempt == self.max_retries:
                    raise
                self._fault(exc, attempt, report)
                # Only a failure after the executor was called is an OutcomeNotRecorded (a
                # StoreUnavailable comes from the reads before it): then it may have acted,
                # and every further try asks under the same key.
                reconcile = reconcile or isinstance(exc, OutcomeNotRecorded)
                current = self._retrying(lambda: self._current(action_id), report)
                if current.status != RUNNING or current.run_key != action.run_key:
                    return current  # its outcome was recorded after all
                action = current
        raise AssertionError("unreachable")

    def _current(self, action_id: int) -> ActionRecord:
        with self.store.read() as tx:
            found = tx.get_action(action_id)
        assert found is not None
        return found

    def _release(self, action_id: int, retry_at: str | None) -> None:
        with self.store.write() as tx:
            tx.release_lease(action_id, self.id, retry_at)

    @contextmanager
    def _heartbeat(self, action_id: int) -> Iterator[None]:
        """Push the lease's deadline on while the executor runs (a third of a lease each
        time), so a slow executor is never taken over while its worker lives."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.lease_seconds / 3):
                now = self.queue.now()
                until = format_time(now + dt.timedelta(seconds=self.lease_seconds))
                try:
                    with self.store.write() as tx:
                        held = tx.extend_lease(action_id, self.id, until, format_time(now))
                    if not held:
                        self._emit({"event": "lease_lost", "action_id": action_id})
                        return
                except StoreError as exc:
                    self._emit({"event": "db_retry", "error": short(exc),
                                "action_id": action_id, "step": "heartbeat"})

        thread = threading.Thread(target=beat, name=f"airgate-heartbeat-{action_id}",
                                  daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    # ------------------------------------------------------------ faults and logs
    def _retrying(self, step: Callable[[], T], report: WorkReport) -> T:
        for attempt in range(self.max_retries + 1):
            try:
                return step()
            except StoreError as exc:
                if attempt == self.max_retries or not _transient(exc):
                    raise
                self._fault(exc, attempt, report)
        raise AssertionError("unreachable")

    def _fault(self, exc: Exception, attempt: int, report: WorkReport) -> None:
        delay = backoff(attempt)
        with self._report_lock:
            report.retried += 1
        self._emit({"event": "db_retry", "error": short(exc), "attempt": attempt + 1,
                    "retry_in_ms": int(delay * 1000)})
        time.sleep(delay)

    def _record_unit(self, report: WorkReport, kind: str, action_id: int, action_type: str,
                     outcome: str, ms: int, attempt: int) -> None:
        unit = {"unit": kind, "action_id": action_id, "action_type": action_type,
                "outcome": outcome, "duration_ms": ms, "attempt": attempt}
        with self._report_lock:
            report.units.append(unit)
        self._emit({"event": "unit", **unit})

    def _emit(self, record: Mapping[str, Any]) -> None:
        try:
            self._log({"worker": self.id, **record})
        except Exception:  # a broken log sink (closed stderr) must not stop the work
            return


def _transient(exc: StoreError) -> bool:
    from airgate.runtime.store import StoreUnavailable

    return isinstance(exc, StoreUnavailable | OutcomeNotRecorded)


__all__ = ["Worker", "WorkReport", "Claim", "default_worker_id", "backoff", "UNITS"]
