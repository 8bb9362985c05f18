"""The worker on PostgreSQL (benchmarks/README.md, "worker"): execution throughput with a
no-op executor for 1, 2 and 4 worker processes, the latency from approve to executor
start with an idle worker (pushed by NOTIFY, not polled), and the query plans of a claim
in a store of 1,000,000 actions. Run by ``run.py --only worker``; asserts nothing."""

from __future__ import annotations

import multiprocessing as mp
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

START = "2024-05-01T12:00:00Z"
USERS = {"alice": ("active-remediation",), "root": ("global-admin",)}
POLL = 5.0  # the idle worker's fallback poll: a latency far below it is the push


def _config() -> Any:
    from airgate.runtime.config import Config

    return Config(users=USERS, automation=frozenset({"soar"}), execution="worker")


class Noop:
    """The executor of the throughput runs: does nothing, so the worker's own cost shows."""

    name = "noop"
    timeout = 5

    def run(self, request: Any) -> Any:
        from airgate.runtime.executors import ExecResult

        return ExecResult(True, {}, "ok", self.name)


class Stamp(Noop):
    """Sends the wall-clock time each run starts (the latency run)."""

    def __init__(self, out: Any) -> None:
        self.out = out

    def run(self, request: Any) -> Any:
        self.out.put((request.action["id"], time.time()))
        return super().run(request)


def _decisions(start: int, n: int) -> list[Any]:
    from airgate.model import Approval, Decision, EntityRef, Evidence

    out = []
    for i in range(start, start + n):
        ev = Evidence("inv1", "device", "malicious", f"dev{i}", f"ws{i}", {"id": f"dev{i}"},
                      action_source="automatedInvestigation")
        out.append(Decision("inv1", EntityRef("device", f"dev{i}", f"ws{i}"), "isolate_device",
                            Approval(roles=("active-remediation",), expires_after=3600),
                            ("r.isolate",), evidence=ev))
    return out


def _approved_store(url: str, n: int) -> None:
    """``n`` approved actions waiting for a worker (execution: worker records only)."""
    from airgate.runtime.queue import Queue
    from airgate.runtime.store import Store

    with Store(url) as store:
        queue = Queue(store, config=_config())
        queue.submit(_decisions(0, n), actor="soar")
        for low in range(1, n + 1, 500):
            queue.approve(list(range(low, min(n, low + 499) + 1)), actor="alice")


def _drain(url: str, name: str, go: Any, out: Any) -> None:
    """One worker process: waits for ``go``, drains the store, reports (start, end, units)."""
    from airgate.runtime.store import Store
    from airgate.runtime.worker import Worker

    with Store(url) as store:
        worker = Worker(store, config=_config(), executors={"default": Noop()}, worker_id=name)
        go.wait()
        began = time.perf_counter()
        report = worker.run_once()
        out.put((began, time.perf_counter(), len(report.units)))


def throughput(n: int, workers: int, fresh: Callable[[], str]) -> float:
    """Units per second of ``workers`` processes draining ``n`` approved actions, each
    count on a fresh store."""
    ctx = mp.get_context("spawn")
    url = fresh()
    _approved_store(url, n)
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_drain, args=(url, f"w{i}", go, out)) for i in range(workers)]
    for p in procs:
        p.start()
    time.sleep(1.0 + 0.3 * workers)  # every process imported and connected
    go.set()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(60)
    done = sum(r[2] for r in results)
    if done != n:
        raise RuntimeError(f"{workers} workers did {done} units of {n}")
    return n / (max(r[1] for r in results) - min(r[0] for r in results))


def _idle_worker(url: str, out: Any, stop: Any) -> None:
    from airgate.runtime.store import Store
    from airgate.runtime.worker import Worker

    with Store(url) as store:
        worker = Worker(store, config=_config(), executors={"default": Stamp(out)},
                        worker_id="idle", poll_interval=POLL)
        halt = threading.Event()
        threading.Thread(target=lambda: (stop.wait(), halt.set()), daemon=True).start()
        out.put(("ready", time.time()))
        worker.run(halt)


def latency(url: str, samples: int) -> list[float]:
    """Milliseconds from the start of ``approve`` to the executor's start, one action at a
    time, the worker idle (waiting on LISTEN, its poll 5 s away) before each."""
    from airgate.runtime.queue import Queue
    from airgate.runtime.store import Store

    ctx = mp.get_context("spawn")
    out, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_idle_worker, args=(url, out, stop))
    times: list[float] = []
    with Store(url) as store:
        queue = Queue(store, config=_config())
        queue.submit(_decisions(0, samples), actor="soar")
        proc.start()
        out.get(timeout=60)
        time.sleep(1.0)  # its first pass done: idle on LISTEN
        for i in range(1, samples + 1):
            began = time.time()
            queue.approve([i], actor="alice")
            action_id, started = out.get(timeout=30)
            assert action_id == i
            times.append((started - began) * 1000)
            time.sleep(0.3)  # idle again before the next
    stop.set()
    proc.join(30)
    return times


def claim_plans(url: str, n: int) -> list[tuple[str, str]]:
    """EXPLAIN of every query one claim makes, in a store of ``n`` actions of which a
    few (one in 1,000) are approved and waiting: (query, plan) pairs."""
    from sqlalchemy import event, text

    from airgate.runtime.store import Store
    from airgate.runtime.worker import Worker

    _approved_store(url, 2)
    with Store(url) as store, store.engine.begin() as conn:
        # A million actions like the first, in bulk: most settled, one in 1,000 approved.
        cols = [c for c in conn.execute(text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'actions'"
            " ORDER BY ordinal_position")).scalars() if c not in ("id", "status",
                                                                  "entity_key")]
        names = ", ".join(cols)
        conn.execute(text(
            f"INSERT INTO actions (id, status, entity_key, {names})"  # noqa: S608
            f" SELECT 2 + g, CASE WHEN g % 1000 = 0 THEN 'approved' ELSE 'completed' END,"
            f" 'bulk' || g, {names} FROM actions, generate_series(1, {n - 2}) g"
            " WHERE actions.id = 1"))
        conn.execute(text("ANALYZE"))
    seen: list[tuple[str, Any]] = []
    with Store(url) as store:
        def record(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
                   many: bool) -> None:
            if statement.lstrip().upper().startswith("SELECT") and "actions" in statement:
                seen.append((statement, params))

        worker = Worker(store, config=_config(), executors={"default": Noop()},
                        worker_id="plan")
        event.listen(store.engine, "before_cursor_execute", record)
        from airgate.runtime.worker.claims import claim_next

        claim_next(worker.queue, "plan", 30.0)  # one claim, as a worker makes it
        event.remove(store.engine, "before_cursor_execute", record)
        plans = []
        raw = store.engine.raw_connection()
        try:
            cur = raw.cursor()
            for statement, params in seen:
                cur.execute("EXPLAIN " + statement, params)
                plans.append((statement, "\n".join(r[0] for r in cur.fetchall())))
            raw.rollback()
        finally:
            raw.close()
    return plans


def bench_worker(report: Any, url: str, n: int, n_store: int, samples: int,
                 fresh: Callable[[], str]) -> None:
    print("\n[7] worker on PostgreSQL (no-op executor)")
    rates = {w: throughput(n, w, fresh) for w in (1, 2, 4)}
    for w, rate in rates.items():
        report.add("worker", f"execution throughput, {w} worker(s), {n} actions", rate,
                   "units/s")
    ratio = rates[2] / rates[1]
    report.add("worker", "2 workers / 1 worker", ratio, "x", ">= 1.7", ratio >= 1.7)
    report.add("worker", "4 workers / 1 worker", rates[4] / rates[1], "x")
    times = latency(fresh(), samples)
    median = statistics.median(times)
    report.add("worker", f"approve -> executor start, idle worker (median of {samples})",
               median, "ms", "< 100", median < 100)
    report.add("worker", "approve -> executor start, slowest", max(times), "ms")
    plans = claim_plans(fresh(), n_store)
    indexed = [q for q, plan in plans if "Seq Scan on actions" not in plan]
    report.add("worker", f"claim queries planned without a scan of {n_store:,} actions",
               len(indexed), f"of {len(plans)}", "all", len(indexed) == len(plans))
    for statement, plan in plans:
        print("    " + " ".join(statement.split())[:160])
        print("      " + plan.replace("\n", "\n      "))
