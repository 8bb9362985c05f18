"""``airgate serve --workers N``: N server processes on one port and one store, each
request served whole by one of them, the store's writes one at a time."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from airgate.cli import main
from runtime_helpers import raw_sqlite

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "policies" / "endpoint.yaml"


def run(tmp: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), env={
        "AIRGATE_DB": str(tmp / "q.db"), "AIRGATE_ACTOR": "root", "AIRGATE_CONFIG": ""})


def test_more_than_one_process_needs_no_worker(tmp_path: Path) -> None:
    result = run(tmp_path, "serve", "--policy", str(POLICY), "--workers", "2")
    assert result.exit_code == 2
    assert "--workers more than 1 needs --no-worker" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "q.db").exists()  # refused before the store was opened


def _alert(i: int) -> bytes:
    alert = json.loads((ROOT / "examples" / "alerts.ndjson").read_text().splitlines()[0])
    alert["id"], alert["incidentId"] = f"w-{i}", str(500 + i)
    for ev in alert["evidence"]:
        if "mdeDeviceId" in ev:
            ev["mdeDeviceId"] = f"{i:040x}"
        if "fileDetails" in ev:
            ev["fileDetails"]["sha256"] = f"{i:064x}"
    return json.dumps({"value": [alert]}).encode()


def _children(pid: int) -> list[int]:
    """The server processes uvicorn started (not multiprocessing's resource tracker)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    found = [int(p) for p in path.read_text().split()] if path.exists() else []
    return [c for c in found if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="counts processes in /proc")
def test_two_processes_serve_one_store(tmp_path: Path) -> None:
    import httpx

    token = run(tmp_path, "token", "create", "--actor", "soar")
    assert token.exit_code == 0, token.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "AIRGATE_DB": str(tmp_path / "q.db"), "AIRGATE_CONFIG": ""}
    env.pop("AIRGATE_NOW", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "airgate", "serve", "--policy", str(POLICY), "--port",
         str(port), "--no-worker", "--workers", "2", "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200 and len(
                        _children(proc.pid)) >= 2:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        assert len(_children(proc.pid)) == 2
        headers = {"Authorization": f"Bearer {token.stdout.strip()}",
                   "Content-Type": "application/json"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            def send(i: int) -> list[str]:
                answer = client.post("/api/v1/evidence", content=_alert(i))
                assert answer.status_code == 200, answer.text
                return [o["outcome"] for o in answer.json()["outcomes"]]

            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                outcomes = list(pool.map(send, range(8)))
            again = send(0)  # the same alert again: unchanged, whichever process serves it
    finally:
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=30)[1]
    assert proc.returncode == 0, err
    assert all(o and set(o) <= {"created", "merged", "excluded"} for o in outcomes)
    assert set(again) <= {"unchanged", "excluded"} and "unchanged" in again
    created = sum(o.count("created") for o in outcomes)
    with raw_sqlite(tmp_path / "q.db") as conn:
        stored = conn.execute("SELECT COUNT(*), COUNT(DISTINCT investigation) FROM actions")
        assert stored.fetchone() == (created, 8)
    verified = run(tmp_path, "ledger", "verify")
    assert verified.exit_code == 0 and "verified" in verified.stdout, verified.output
