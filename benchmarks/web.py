"""Benchmark 6: the web Action Center's Pending tab over a large store.

A store of N pending actions (filled through ``Queue.submit``, as the queue benchmark
fills its own), served by ``create_app`` through FastAPI's TestClient (in process: the
time is the server's, plus a TestClient round trip of well under a millisecond). A
signed-in browser session asks for the first page of the Pending tab; the figure is
the p95 over repeated requests. Beside it, in the same run: the same first page as
the JSON API lists it (when the API has the listing) and the library call under both.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

POLICY = """\
apiVersion: airgate/v1
kind: Policy
metadata: {name: bench-web}
spec:
  rules:
    - id: bench-rule
      match: {verdict: malicious, entity: device}
      action: isolate_device
      approval: {required: true, roles: [active-remediation]}
"""
CONFIG = "users:\n  root: [global-admin]\n"
ROUNDS = 40


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def _times(fn: Callable[[], Any], rounds: int = ROUNDS) -> list[float]:
    for _ in range(3):  # warm the page cache, the templates and the connection pool
        fn()
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def fill(url: str, n_store: int, decisions: Callable[[int, int], list[Any]]) -> float:
    """A store of ``n_store`` pending actions; returns the seconds it took."""
    from airgate.runtime.queue import Queue
    from airgate.runtime.store import Store

    start = time.perf_counter()
    store = Store(url)
    try:
        queue = Queue(store)
        chunk = 20_000
        for i in range(0, n_store, chunk):
            queue.submit(decisions(i, min(chunk, n_store - i)), actor="bench")
    finally:
        store.close()
    return time.perf_counter() - start


def bench_web(report: Any, workdir: Path, n_store: int,
              decisions: Callable[[int, int], list[Any]]) -> None:
    try:
        from fastapi.testclient import TestClient

        from airgate.server.app import create_app
        from airgate.server.context import ServerSettings
    except ImportError as exc:
        print(f"\n[6] web Action Center: skipped ({exc.name} is not installed:"
              " pip install -e '.[server]')")
        return
    from airgate.runtime import tokens
    from airgate.runtime.records import ActionFilter

    print(f"\n[6] web Action Center: Pending tab over {n_store:,} pending actions", flush=True)
    db = workdir / f"web-{n_store}.db"
    (workdir / "web-policy.yaml").write_text(POLICY)
    (workdir / "web-config.yaml").write_text(CONFIG)
    t_fill = fill(str(db), n_store, decisions)
    report.add("web", f"populate {n_store:,} actions via Queue.submit", n_store / t_fill,
               "actions/s")
    app = create_app(ServerSettings(db=str(db), policy_paths=(str(workdir / "web-policy.yaml"),),
                                    config_path=str(workdir / "web-config.yaml"),
                                    worker=False))
    with TestClient(app) as client:
        ctx = app.state.airgate
        raw, _ = tokens.create(ctx.store, actor="root", by="root", now=ctx.now())
        form = client.get("/signin").text
        csrf = form.split('name="csrf" value="')[1].split('"')[0]
        signed = client.post("/signin", data={"token": raw, "csrf": csrf},
                             follow_redirects=False)
        assert signed.status_code == 303, signed.text

        def pending_page() -> None:
            response = client.get("/actions/pending")
            assert response.status_code == 200 and 'name="ids"' in response.text

        page = _times(pending_page)
        p95 = _p95(page)
        report.add("web", "Pending tab, first page (50 rows), p95", p95 * 1000, "ms",
                   "target < 100", p95 < 0.1)
        report.add("web", "Pending tab, first page, median", statistics.median(page) * 1000,
                   "ms")
        headers = {"Authorization": f"Bearer {raw}"}
        api = client.get("/api/v1/actions?status=pending&limit=50", headers=headers)
        if api.status_code == 200:
            listing = _times(lambda: client.get("/api/v1/actions?status=pending&limit=50",
                                                headers=headers))
            report.add("web", "JSON API, same first page, p95", _p95(listing) * 1000, "ms")
            report.add("web", "Pending tab / JSON API (p95)", p95 / _p95(listing), "x")
        queue = ctx.queue()
        flt = ActionFilter(statuses=("pending",), limit=51, newest_first=True)
        library = _times(lambda: queue.list_actions(flt))
        report.add("web", "library: Queue.list_actions of that page, p95",
                   _p95(library) * 1000, "ms")
        from airgate.server.webviews import COUNT_CAP

        counts = _times(lambda: queue.pending_counts(COUNT_CAP))
        report.add("web", f"library: pending counts by type (exact to {COUNT_CAP:,}), p95",
                   _p95(counts) * 1000, "ms")
        exact = _times(queue.pending_counts, rounds=3)
        report.add("web", "library: exact pending counts by type, p95 of 3",
                   _p95(exact) * 1000, "ms")
        report.add("web", "Pending tab / library listing (p95)", p95 / _p95(library), "x")
