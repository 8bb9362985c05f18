"""While the server runs, time-driven work happens by itself (unless --no-worker), and
/metrics counts what happened."""

from __future__ import annotations

import time
from pathlib import Path

from server_helpers import investigation, serve


def _status(srv, action_id: int) -> str:  # type: ignore[no-untyped-def]
    return str(srv.client.get(f"/api/v1/actions/{action_id}",
                              headers=srv.as_("alice")).json()["action"]["status"])


def _wait_for(check, seconds: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_the_in_process_worker_expires_and_reverts_while_the_server_runs(
        tmp_path: Path) -> None:
    with serve(tmp_path, worker=True, worker_interval=0.05) as srv:
        srv.submit(investigation())
        assert _status(srv, 1) == "pending" and _status(srv, 2) == "completed"
        srv.advance(8 * 86400)  # past the 7-day expiry and the 24h revert
        assert _wait_for(lambda: _status(srv, 1) == "expired" and _status(srv, 2) == "undone")
        ledger = srv.client.get("/api/v1/actions/1", headers=srv.as_("alice")).json()["ledger"]
        assert ledger[-1]["event"] == "expired" and ledger[-1]["actor"] == "system"
        metrics = srv.client.get("/metrics", headers=srv.as_("alice")).text
    assert ('airgate_worker_units_total{action_type="isolate_device",outcome="expired",'
            'unit="expire"} 1.0') in metrics
    assert ('airgate_executions_total{action_type="quarantine_file",operation="revert",'
            'outcome="undone"} 1.0') in metrics


def test_without_the_worker_nothing_moves_by_itself(tmp_path: Path) -> None:
    with serve(tmp_path, worker=False) as srv:
        srv.submit(investigation())
        srv.advance(8 * 86400)
        time.sleep(0.3)
        assert _status(srv, 1) == "pending"  # a reader never expires anything


def test_metrics_count_pending_actions_decisions_and_transitions(tmp_path: Path) -> None:
    with serve(tmp_path) as srv:
        srv.submit(investigation())
        srv.submit(investigation("inv-8", device="d2", name="ws2"))
        srv.client.post("/api/v1/actions/approve", json={"ids": [1]}, headers=srv.as_("alice"))
        text = srv.client.get("/metrics", headers=srv.as_("alice")).text
    assert 'airgate_pending_actions{action_type="isolate_device"} 1.0' in text
    assert 'airgate_decisions_total{action_type="isolate_device",outcome="created"} 2.0' in text
    assert 'airgate_decisions_total{action_type="isolate_device",outcome="excluded"} 2.0' in text
    assert ('airgate_transitions_total{action_type="isolate_device",operation="approve",'
            'outcome="completed"} 1.0') in text
    assert ('airgate_executions_total{action_type="isolate_device",operation="apply",'
            'outcome="completed"} 1.0') in text
    assert ('airgate_executions_total{action_type="quarantine_file",operation="apply",'
            'outcome="completed"} 2.0') in text  # automatic, on submit
    assert 'route="/api/v1/actions/approve"' in text  # the route template, never a raw path
    assert 'route="/api/v1/evidence",status="200"' in text


def test_with_execution_worker_the_in_process_worker_carries_out_approvals(
        tmp_path: Path) -> None:
    from server_helpers import CONFIG

    with serve(tmp_path, worker=True, worker_interval=0.05,
               config="execution: worker\n" + CONFIG) as srv:
        srv.submit(investigation())
        done = srv.client.post("/api/v1/actions/approve", json={"ids": [1]},
                               headers=srv.as_("alice"))
        assert done.status_code == 200 and done.json()[0]["status"] == "approved"
        assert _wait_for(lambda: _status(srv, 1) == "completed")
        ledger = srv.client.get("/api/v1/actions/1", headers=srv.as_("alice")).json()["ledger"]
        started = next(e for e in ledger if e["event"] == "started")
        assert started["actor"] == "alice" and started["details"].get("worker")
