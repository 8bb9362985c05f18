"""API submit of Graph alerts: ``airgate serve`` in a subprocess on 127.0.0.1 and an
httpx load generator beside it, against ``Queue.submit`` in-process on the same alerts.

    python benchmarks/server_submit.py               # 20,000 alerts, batches of 500
    python benchmarks/server_submit.py --quick       # 1,000 alerts: a smoke run (seconds)

Each alert is a Microsoft Graph ``alerts_v2`` alert (the first of examples/alerts.ndjson
with its ids, device and file hash made unique), so every alert is an investigation of
its own with four decisions under policies/endpoint.yaml. Two policies:

- queued (the target): that pack with every ``approval: auto`` made ``required``
  (Defender's semi-automatic level), so every decision waits in the queue: what the
  API adds to the queue's own work;
- automatic (shown at 1/20 of the size): the pack as shipped, where three of the four
  actions are carried out at once by the record executor. Each execution commits twice
  with SQLite's ``synchronous=FULL``, so this figure measures the disk's fsync, the
  same through the API and in-process.

Requests are Graph list
responses (``{"value": [...]}``), ``--batch`` alerts each, sent by ``--concurrency``
client threads. The in-process baseline reads the same bodies with the same reader,
evaluates and calls ``Queue.submit`` per batch on a fresh store. Nothing is asserted:
the target (>= 1,000 alerts/s through the API) prints as [met] or [MISSED].
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET = 1000.0  # alerts per second through the API


def alerts(n: int) -> list[dict[str, Any]]:
    template = json.loads((ROOT / "examples" / "alerts.ndjson").read_text().splitlines()[0])
    out = []
    for i in range(n):
        alert = copy.deepcopy(template)
        alert["id"] = f"bench-{i:08d}"
        alert["incidentId"] = str(100000 + i)
        device = f"{i:040x}"
        for ev in alert["evidence"]:
            if "mdeDeviceId" in ev:
                ev["mdeDeviceId"] = device
            if "deviceDnsName" in ev:
                ev["deviceDnsName"] = f"ws-{i}.contoso.com"
            if "fileDetails" in ev:
                ev["fileDetails"]["sha256"] = f"{i:064x}"
        out.append(alert)
    return out


def bodies(items: list[dict[str, Any]], batch: int) -> list[bytes]:
    return [json.dumps({"value": items[i:i + batch]}).encode()
            for i in range(0, len(items), batch)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"airgate serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("airgate serve did not answer /healthz in time")


def through_api(work: Path, payloads: list[bytes], n_alerts: int, concurrency: int,
                policy: Path, workers: int = 1) -> float:
    """Alerts per second submitted through a real server process."""
    import httpx

    from airgate.runtime import tokens
    from airgate.runtime.clock import SystemClock
    from airgate.runtime.store import Store

    db = work / f"api-{workers}.db"
    with Store(db) as store:
        raw, _ = tokens.create(store, actor="soar", by="bench", now=SystemClock().now())
    port = _free_port()
    env = {**os.environ, "AIRGATE_CONFIG": ""}
    env.pop("AIRGATE_NOW", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "airgate", "serve", "--db", str(db), "--policy", str(policy),
         "--port", str(port), "--no-worker", "--log-level", "warning",
         *(["--workers", str(workers)] if workers > 1 else [])],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        headers = {"Authorization": f"Bearer {raw}", "Content-Type": "application/json"}
        with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
            def send(body: bytes) -> int:
                response = client.post("/api/v1/evidence", content=body)
                if response.status_code != 200:
                    raise RuntimeError(f"submit answered {response.status_code}:"
                                       f" {response.text[:300]}")
                return len(response.json()["investigations"])

            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
                done = sum(pool.map(send, payloads))
            elapsed = time.perf_counter() - start
        if done != n_alerts:
            raise RuntimeError(f"the server recorded {done} investigations, not {n_alerts}")
        return n_alerts / elapsed
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def in_process(work: Path, payloads: list[bytes], n_alerts: int, policy: Path) -> float:
    """Alerts per second: the same bodies read, evaluated and Queue.submit-ted directly."""
    from airgate.engine import core as engine_mod
    from airgate.evidence.reader import iter_evidence
    from airgate.policy.loader import load_policy_set
    from airgate.runtime.queue import Queue
    from airgate.runtime.store import Store

    policy_set = load_policy_set([policy])
    engine = engine_mod.compile(policy_set)
    with Store(work / "direct.db") as store:
        queue = Queue(store, catalog=policy_set.catalog)
        start = time.perf_counter()
        for body in payloads:
            seen: dict[str, None] = {}
            items = []
            for item in iter_evidence(io.BytesIO(body)):
                seen.setdefault(item.investigation)
                items.append(item)
            queue.submit(engine.evaluate(items), actor="soar", catalog=policy_set.catalog,
                         investigations=seen)
        elapsed = time.perf_counter() - start
    return n_alerts / elapsed


def run(work: Path, n: int, batch: int, concurrency: int, policy: Path,
        label: str, workers: int = 1) -> dict[str, float]:
    payloads = bodies(alerts(n), batch)
    api = through_api(work, payloads, n, concurrency, policy)
    many = through_api(work, payloads, n, concurrency, policy, workers) if workers > 1 else 0.0
    direct = in_process(work, payloads, n, policy)
    best = max(api, many)
    mark = ("[met]" if best >= TARGET else "[MISSED]") if label == "queued" else "(shown)"
    print(f"{label}: {n} Graph alerts in batches of {batch}, {concurrency} client threads")
    print(f"  API (airgate serve + httpx, 127.0.0.1): {api:10.0f} alerts/s"
          + (f"   target >= {TARGET:.0f} {mark}" if label == "queued" and not many else ""))
    if many:
        print(f"  API, serve --workers {workers}:              {many:10.0f} alerts/s"
              + (f"   target >= {TARGET:.0f} {mark}" if label == "queued" else ""))
    print(f"  in-process Queue.submit:                {direct:10.0f} alerts/s")
    print(f"  API / in-process:                       {api / direct:10.2f}")
    if many:
        print(f"  API --workers {workers} / in-process:          {many / direct:10.2f}")
    return {f"{label}_api": api, f"{label}_in_process": direct, f"{label}_ratio": api / direct,
            **({f"{label}_api_workers": many} if many else {})}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2,
                        help="also through airgate serve --workers N (1: one process only)")
    parser.add_argument("--quick", action="store_true",
                        help="the queued policy only, at 1,000 alerts unless --alerts says")
    args = parser.parse_args(argv)
    given = "--alerts" in (argv if argv is not None else sys.argv[1:])
    n = 1000 if args.quick and not given else args.alerts
    shipped = ROOT / "policies" / "endpoint.yaml"
    figures: dict[str, float] = {}
    if hasattr(os, "getloadavg"):
        print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="airgate-bench-server-") as tmp:
        work = Path(tmp)
        queued = work / "queued.yaml"
        queued.write_text(shipped.read_text().replace("approval: auto", "approval: required"))
        (work / "q").mkdir()
        figures.update(run(work / "q", n, args.batch, args.concurrency, queued, "queued",
                           args.workers))
        if not args.quick:
            (work / "a").mkdir()
            figures.update(run(work / "a", max(n // 20, args.batch), args.batch,
                               args.concurrency, shipped, "automatic", args.workers))
    return figures


if __name__ == "__main__":
    main()
