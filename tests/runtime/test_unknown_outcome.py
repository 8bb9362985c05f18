"""A request that went out but got no answer (the connection dropped after the request
was read, or the answer was late) leaves the action running under its idempotency key:
`tick` reconciles it with that key instead of a failure the service may contradict. A
connection that could not be made is still a plain failure."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from ms_fake import SECRET, SECRET_ENV, Answer, Fake, options, serve

from airgate.runtime.config import Config, ExecutorConfig
from airgate.runtime.executors import ExecRequest, make_executor
from runtime_helpers import decision, make_queue

DEV = "1e5bc9d7e413ddd7902c2932e418702b84d0cc07"
OID = "87d349ed-44d7-43e1-9a83-5f2406dee5bd"
MA = "7883e2b6-3c2b-4b80-a2b3-0f7b0d3c2f11"
USERS = {"alice": ("active-remediation",), "erin": ("security-admin",)}
ISOLATE = f"/api/machines/{DEV}/isolate"
REVOKE = f"/users/{OID}/revokeSignInSessions"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.setenv("SOAR_SECRET", "hook-secret-value")
    with serve() as server:
        yield server


def machine_action(status: str, comment: str = "") -> dict[str, Any]:
    return {"id": MA, "type": "Isolate", "requestorComment": comment, "status": status,
            "machineId": DEV}


def queue_for(store_url: Any, action_type: str, executor: ExecutorConfig):
    config = Config(users=USERS, automation=frozenset({"bob"}),
                    executors={action_type: executor})
    return make_queue(store_url, config=config)


def defender(fake: Fake, timeout: int = 10) -> ExecutorConfig:
    return ExecutorConfig("defender_endpoint", timeout=timeout,
                          options=options(fake, poll_interval=0, retries=1))


def isolate(store_url: Any, fake: Fake, timeout: int = 10):
    queue, clock = queue_for(store_url, "isolate_device", defender(fake, timeout))
    queue.submit([decision(f"device:{DEV}", "isolate_device", fields={"mdeDeviceId": DEV})],
                 actor="bob")
    [left] = queue.approve([1], actor="alice")
    return queue, clock, left


def test_a_dropped_isolate_request_stays_running_and_tick_finds_the_earlier_action(
        store_url, fake):
    fake.on("POST", ISOLATE, Answer(201, drop=True))
    queue, clock, left = isolate(store_url, fake)
    assert left.status == "running"
    key = left.run_key
    entry = queue.ledger_entries(1)[-1]
    assert (entry.event, entry.state_before, entry.state_after) == (
        "outcome_unknown", "running", "running")
    assert entry.details["idempotency_key"] == key
    assert entry.details["result"]["outcome"] == "unknown"
    assert entry.details["result"]["message"] == (
        f"POST {ISOLATE}: network error (RemoteProtocolError)")
    # Defender did act on it: the machine action carries the key in its comment.
    fake.on("GET", "/api/machineactions", Answer(200, {"value": [
        machine_action("Succeeded", comment=f"airgate action 1 apply [{key}]")]}))
    clock.advance(minutes=5)
    assert queue.tick().reconciled == [1]
    done = queue.get(1)
    assert done.status == "completed"
    assert done.result["machine_action_id"] == MA and done.result["found_earlier"] is True
    assert len(fake.calls("POST", ISOLATE)) == 1
    assert queue.ledger_entries(1)[-1].details["idempotency_key"] == key


@pytest.mark.slow
def test_an_isolate_request_answered_too_late_stays_running(store_url, fake):
    fake.on("POST", ISOLATE, Answer(201, machine_action("Pending"), delay=1.5))
    queue, _, left = isolate(store_url, fake, timeout=1)
    assert left.status == "running"
    entry = queue.ledger_entries(1)[-1]
    assert entry.event == "outcome_unknown"
    assert entry.details["result"]["message"] == f"POST {ISOLATE}: no answer within 1 s"


def test_a_dropped_poll_keeps_the_machine_action_id_and_the_action_running(store_url, fake):
    fake.on("POST", ISOLATE, Answer(201, machine_action("Pending")))
    fake.on("GET", f"/api/machineactions/{MA}", Answer(200, drop=True))
    queue, _, left = isolate(store_url, fake)
    assert left.status == "running"
    result = queue.ledger_entries(1)[-1].details["result"]
    assert result["outcome"] == "unknown"
    assert result["output"]["machine_action_id"] == MA


def test_a_refused_connection_is_a_failure_not_an_unknown_outcome(store_url, fake):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    executor = ExecutorConfig("defender_endpoint", timeout=10,
                              options={**options(fake, poll_interval=0), "base_url": closed})
    queue, _ = queue_for(store_url, "isolate_device", executor)
    queue.submit([decision(f"device:{DEV}", "isolate_device", fields={"mdeDeviceId": DEV})],
                 actor="bob")
    [failed] = queue.approve([1], actor="alice")
    assert failed.status == "failed"
    assert failed.error == f"POST {ISOLATE}: network error (ConnectError)"


def test_a_dropped_token_request_is_a_failure_nothing_was_acted_on(fake):
    fake.on("POST", "/contoso.onmicrosoft.com/oauth2/v2.0/token", Answer(200, drop=True))
    executor = make_executor(ExecutorConfig("graph_identity", options=options(fake)),
                             records=None)  # type: ignore[arg-type]
    result = executor.run(ExecRequest("apply", {"id": 1, "action_type": "revoke_sessions"},
                                      {"type": "user", "key": f"user:{OID}"}, "k1"))
    assert (result.ok, result.unknown) == (False, False)
    assert fake.api_calls() == []


def test_a_dropped_revocation_is_sent_again_by_tick_with_the_same_request_id(store_url, fake):
    fake.on("POST", REVOKE, Answer(200, drop=True), Answer(200, {"value": True}))
    executor = ExecutorConfig("graph_identity", timeout=10, options=options(fake, retries=1))
    queue, clock = queue_for(store_url, "revoke_sessions", executor)
    queue.submit([decision(f"user:{OID}", "revoke_sessions", entity_type="user",
                           roles=("security-admin",), fields={"aadUserId": OID})], actor="bob")
    [left] = queue.approve([1], actor="erin")
    assert left.status == "running"
    assert queue.ledger_entries(1)[-1].event == "outcome_unknown"
    clock.advance(minutes=5)
    assert queue.tick().reconciled == [1]
    assert queue.get(1).status == "completed"
    first, second = fake.calls("POST", REVOKE)
    assert first.headers["client-request-id"] == second.headers["client-request-id"]


def test_a_dropped_webhook_is_sent_again_by_tick_with_the_same_idempotency_key(store_url, fake):
    fake.on("POST", "/soar", Answer(200, drop=True), Answer(200, {"ticket": "T-1"}))
    executor = ExecutorConfig("http", timeout=5, options={"url": fake.url + "/soar",
                                                          "secret_env": "SOAR_SECRET"})
    queue, clock = queue_for(store_url, "isolate_device", executor)
    queue.submit([decision("dev1", required=True)], actor="bob")
    [left] = queue.approve([1], actor="alice")
    assert left.status == "running"
    entry = queue.ledger_entries(1)[-1]
    assert entry.event == "outcome_unknown"
    assert entry.details["result"]["message"].startswith(
        "cannot reach 127.0.0.1: RemoteProtocolError")
    clock.advance(minutes=5)
    assert queue.tick().reconciled == [1]
    done = queue.get(1)
    assert done.status == "completed" and done.result == {"status": 200,
                                                          "json": {"ticket": "T-1"}}
    first, second = fake.calls("POST", "/soar")
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"] == left.run_key
