"""The defender_endpoint executor against a local stand-in for Entra ID and Defender for
Endpoint: the documented requests, polling to each final status, undo, reconciliation,
errors and retries, and secrets kept out of everything airgate keeps."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ms_fake import CLIENT_ID, SECRET, SECRET_ENV, TENANT, TOKEN, Answer, Fake, options, serve

from airgate.runtime.config import Config, ExecutorConfig
from airgate.runtime.executors import ExecRequest, ExecResult, make_executor
from runtime_helpers import decision, make_queue

DEV = "1e5bc9d7e413ddd7902c2932e418702b84d0cc07"
SHA1 = "a" * 40
SHA256 = "b" * 64
MA = "7883e2b6-3c2b-4b80-a2b3-0f7b0d3c2f11"
USERS = {"alice": ("active-remediation",)}


def machine_action(status: str, kind: str = "Isolate", comment: str = "") -> dict[str, Any]:
    # The MachineAction entity as get-machineaction-object.md shows it.
    return {"id": MA, "type": kind, "scope": "Full", "requestor": "airgate-app",
            "requestorComment": comment, "status": status, "machineId": DEV,
            "computerDnsName": "ws1.contoso.com",
            "creationDateTimeUtc": "2024-05-01T12:00:00Z",
            "lastUpdateDateTimeUtc": "2024-05-01T12:00:01Z", "relatedFileInfo": None}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with serve() as server:
        yield server


def queue_for(store_url: Any, fake: Fake, action_type: str = "isolate_device", **opts: Any):
    config = Config(users=USERS, automation=frozenset({"bob"}), executors={
        action_type: ExecutorConfig("defender_endpoint", timeout=10,
                                    options=options(fake, poll_interval=0, retries=2, **opts))})
    queue, clock = make_queue(store_url, config=config)
    return queue, clock


def device(action: str = "isolate_device", **fields: Any):
    return decision(f"device:{DEV}", action, fields={"mdeDeviceId": DEV, **fields})


def test_isolation_is_posted_polled_to_succeeded_and_released_on_undo(store_url, fake):
    fake.on("POST", f"/api/machines/{DEV}/isolate", Answer(201, machine_action("Pending")))
    fake.on("GET", f"/api/machineactions/{MA}", Answer(200, machine_action("InProgress")),
            Answer(200, machine_action("Succeeded")))
    queue, _ = queue_for(store_url, fake)
    queue.submit([device()], actor="bob")
    [done] = queue.approve([1], actor="alice")
    assert done.status == "completed"
    assert done.result == {"machine_action_id": MA, "type": "Isolate", "machine_id": DEV,
                           "status": "Succeeded", "found_earlier": False}
    [token] = fake.calls("POST", f"/{TENANT}/oauth2/v2.0/token")
    # MSAL's client-credentials request (client_info=1 is MSAL's own, ignored here)
    assert token.body == {"client_id": CLIENT_ID, "client_secret": SECRET,
                          "grant_type": "client_credentials", "client_info": "1",
                          "scope": "https://api.securitycenter.microsoft.com/.default"}
    [post] = fake.calls("POST", f"/api/machines/{DEV}/isolate")
    key = done.run_key
    assert post.body == {"Comment": f"airgate action 1 apply [{key}]", "IsolationType": "Full"}
    assert post.headers["authorization"] == f"Bearer {TOKEN}"
    assert post.headers["content-type"] == "application/json"
    assert [c.path for c in fake.api_calls() if c.method == "GET"] == [
        f"/api/machineactions/{MA}"] * 2
    assert all(c.headers["authorization"] == f"Bearer {TOKEN}" for c in fake.api_calls())
    entry = queue.ledger_entries(1)[-1]
    assert entry.event == "completed"
    assert entry.details["result"]["output"]["machine_action_id"] == MA
    assert entry.details["result"]["output"]["status"] == "Succeeded"

    fake.on("POST", f"/api/machines/{DEV}/unisolate",
            Answer(201, machine_action("Succeeded", "Unisolate")))
    [undone] = queue.undo([1], actor="alice")
    assert undone.status == "undone"
    [release] = fake.calls("POST", f"/api/machines/{DEV}/unisolate")
    assert release.body == {"Comment": f"airgate action 1 undo [{undone.run_key}]"}
    # one token for both runs: it is cached until shortly before it expires
    assert len(fake.calls("POST", f"/{TENANT}/oauth2/v2.0/token")) == 1


@pytest.mark.parametrize("final", ["Failed", "Cancelled", "TimeOut"])
def test_a_machine_action_that_ends_otherwise_fails_the_action(store_url, fake, final):
    fake.on("POST", f"/api/machines/{DEV}/isolate", Answer(201, machine_action("Pending")))
    fake.on("GET", f"/api/machineactions/{MA}", Answer(200, machine_action(final)))
    queue, _ = queue_for(store_url, fake)
    queue.submit([device()], actor="bob")
    [failed] = queue.approve([1], actor="alice")
    assert failed.status == "failed"
    assert failed.error == f"machine action {MA} (Isolate) ended {final}"
    output = queue.ledger_entries(1)[-1].details["result"]["output"]
    assert (output["machine_action_id"], output["status"]) == (MA, final)


@pytest.mark.parametrize(("action", "segment", "extra", "opts"), [
    ("isolate_device", "isolate", {"IsolationType": "Selective"},
     {"isolation_type": "Selective"}),
    ("run_antivirus_scan", "runAntiVirusScan", {"ScanType": "Quick"}, {}),
    ("run_antivirus_scan", "runAntiVirusScan", {"ScanType": "Full"}, {"scan_type": "Full"}),
    ("collect_investigation_package", "collectInvestigationPackage", {}, {}),
    ("restrict_code_execution", "restrictCodeExecution", {}, {}),
])
def test_each_device_action_sends_its_documented_request(store_url, fake, action, segment,
                                                         extra, opts):
    fake.on("POST", f"/api/machines/{DEV}/{segment}", Answer(201, machine_action("Succeeded")))
    queue, _ = queue_for(store_url, fake, action, **opts)
    queue.submit([device(action)], actor="bob")
    [done] = queue.approve([1], actor="alice")
    assert done.status == "completed"
    [post] = fake.api_calls()
    assert post.path == f"/api/machines/{DEV}/{segment}"
    assert post.body == {"Comment": f"airgate action 1 apply [{done.run_key}]", **extra}


def test_removing_the_app_restriction_is_the_undo(store_url, fake):
    fake.on("POST", f"/api/machines/{DEV}/restrictCodeExecution",
            Answer(201, machine_action("Succeeded", "RestrictCodeExecution")))
    fake.on("POST", f"/api/machines/{DEV}/unrestrictCodeExecution",
            Answer(201, machine_action("Succeeded", "UnrestrictCodeExecution")))
    queue, _ = queue_for(store_url, fake, "restrict_code_execution")
    queue.submit([device("restrict_code_execution")], actor="bob")
    queue.approve([1], actor="alice")
    assert queue.undo([1], actor="alice")[0].status == "undone"
    assert [c.path for c in fake.api_calls()] == [
        f"/api/machines/{DEV}/restrictCodeExecution",
        f"/api/machines/{DEV}/unrestrictCodeExecution"]


def file_decision(**details: str):
    return decision(f"file:{SHA256}@{DEV}", "stop_and_quarantine_file", entity_type="file",
                    fields={"mdeDeviceId": DEV, "fileDetails": {"fileName": "evil.exe",
                                                                **details}})


def test_stop_and_quarantine_sends_the_files_sha1(store_url, fake):
    fake.on("POST", f"/api/machines/{DEV}/StopAndQuarantineFile",
            Answer(201, machine_action("Succeeded", "StopAndQuarantineFile")))
    queue, _ = queue_for(store_url, fake, "stop_and_quarantine_file")
    queue.submit([file_decision(sha1=SHA1.upper(), sha256=SHA256)], actor="bob")
    [done] = queue.approve([1], actor="alice")
    assert done.status == "completed"
    [post] = fake.api_calls()
    assert post.body == {"Comment": f"airgate action 1 apply [{done.run_key}]", "Sha1": SHA1}


def test_a_file_with_only_a_sha256_fails_clearly_without_a_call(store_url, fake):
    queue, _ = queue_for(store_url, fake, "stop_and_quarantine_file")
    queue.submit([file_decision(sha256=SHA256)], actor="bob")
    [failed] = queue.approve([1], actor="alice")
    assert failed.status == "failed"
    assert failed.error == ("StopAndQuarantineFile needs the file's SHA-1 and the evidence"
                            " has only a SHA-256")
    assert fake.seen == []


def test_offboarding_is_never_sent(store_url, fake):
    queue, _ = queue_for(store_url, fake, "offboard_device")
    queue.submit([device("offboard_device")], actor="bob")
    [failed] = queue.approve([1], actor="alice")
    assert failed.status == "failed" and "never offboards" in failed.error
    assert fake.seen == []


def test_a_device_id_that_is_not_defenders_shape_is_never_sent(store_url, fake):
    queue, _ = queue_for(store_url, fake)
    queue.submit([decision("device:ws1", fields={"mdeDeviceId": "../../api/x?y=1"})],
                 actor="bob")
    [failed] = queue.approve([1], actor="alice")
    assert failed.status == "failed" and "no Defender device id" in failed.error
    assert fake.seen == []


class Crash(BaseException):
    """Stands for the process dying right after the machine action was sent."""


class CrashAfter:
    name = "defender_endpoint"

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def run(self, request: ExecRequest) -> ExecResult:
        self.inner.run(request)
        raise Crash


def test_a_reconciled_run_finds_the_earlier_machine_action_and_sends_no_second(store_url, fake):
    fake.on("POST", f"/api/machines/{DEV}/isolate", Answer(201, machine_action("Pending")))
    fake.on("GET", f"/api/machineactions/{MA}", Answer(200, machine_action("Succeeded")))
    queue, clock = queue_for(store_url, fake)
    config = queue.config.executor_for("isolate_device")
    queue._executors["isolate_device"] = CrashAfter(make_executor(config, queue.store))
    queue.submit([device()], actor="bob")
    with pytest.raises(Crash):
        queue.approve([1], actor="alice")
    key = queue.get(1).run_key
    del queue._executors["isolate_device"]
    # Defender lists the machine's actions of that type; the comment carries the key
    fake.on("GET", "/api/machineactions", Answer(200, {"value": [
        {**machine_action("Succeeded"), "id": "other", "requestorComment": "by hand"},
        machine_action("Succeeded", comment=f"airgate action 1 apply [{key}]")]}))
    clock.advance(minutes=5)
    assert queue.tick().reconciled == [1]
    done = queue.get(1)
    assert done.status == "completed" and done.result["machine_action_id"] == MA
    assert done.result["found_earlier"] is True
    assert len(fake.calls("POST", f"/api/machines/{DEV}/isolate")) == 1
    [listing] = fake.calls("GET", "/api/machineactions")
    assert listing.query == {"$filter": [f"machineId eq '{DEV}' and type eq 'Isolate'"]}
    assert queue.ledger_entries(1)[-1].details["reconciled"] is True


def run_once(store_url: Any, fake: Fake, **opts: Any):
    queue, _ = queue_for(store_url, fake, **opts)
    queue.submit([device()], actor="bob")
    return queue.approve([1], actor="alice")[0]


def test_throttling_is_retried_after_retry_after(store_url, fake):
    fake.on("POST", f"/api/machines/{DEV}/isolate",
            Answer(429, {"error": {"code": "TooManyRequests", "message": "slow down"}},
                   {"Retry-After": "0"}),
            Answer(201, machine_action("Succeeded")))
    assert run_once(store_url, fake).status == "completed"
    assert len(fake.calls("POST", f"/api/machines/{DEV}/isolate")) == 2


def test_server_errors_are_retried_within_the_budget_then_fail(store_url, fake):
    fake.on("POST", f"/api/machines/{DEV}/isolate",
            Answer(503, {"error": {"code": "ServiceUnavailable", "message": "down"}},
                   {"Retry-After": "0"}))
    failed = run_once(store_url, fake)
    assert failed.status == "failed"
    assert failed.error == (f"POST /api/machines/{DEV}/isolate answered 503:"
                            " ServiceUnavailable: down")
    assert len(fake.calls("POST", f"/api/machines/{DEV}/isolate")) == 3  # retries: 2


def test_a_client_error_fails_at_once_with_the_services_message(store_url, fake):
    fake.on("POST", f"/api/machines/{DEV}/isolate", Answer(
        400, {"error": {"code": "ActiveRequestAlreadyExists",
                        "message": "Action is already in progress"}}))
    failed = run_once(store_url, fake)
    assert failed.error.endswith("answered 400: ActiveRequestAlreadyExists: Action is"
                                 " already in progress")
    assert len(fake.api_calls()) == 1


def test_a_malformed_answer_is_a_clear_failure(store_url, fake):
    fake.on("POST", f"/api/machines/{DEV}/isolate", Answer(201, raw=b"{not json"))
    failed = run_once(store_url, fake)
    assert failed.status == "failed"
    assert failed.error == (f"POST /api/machines/{DEV}/isolate answered 201 with a body that"
                            " is not JSON")


@pytest.mark.slow
def test_polling_stops_at_the_time_out(store_url, fake):
    fake.on("POST", f"/api/machines/{DEV}/isolate", Answer(201, machine_action("Pending")))
    fake.on("GET", f"/api/machineactions/{MA}", Answer(200, machine_action("InProgress")))
    config = Config(users=USERS, automation=frozenset({"bob"}), executors={
        "isolate_device": ExecutorConfig("defender_endpoint", timeout=1,
                                         options=options(fake, poll_interval=0.05))})
    queue, _ = make_queue(store_url, config=config)
    queue.submit([device()], actor="bob")
    [failed] = queue.approve([1], actor="alice")
    assert failed.status == "failed"
    assert failed.error == f"machine action {MA} still InProgress after 1 s"


def test_no_secret_and_no_token_anywhere_airgate_keeps(store_url, fake, monkeypatch):
    # The token endpoint refuses, echoing the secret (a hostile or broken server).
    fake.on("POST", f"/{TENANT}/oauth2/v2.0/token", Answer(
        401, {"error": "invalid_client", "error_description": f"bad secret {SECRET}"}))
    failed = run_once(store_url, fake)
    assert failed.status == "failed"
    assert "token request answered 401: invalid_client: bad secret ***" in failed.error
    kept = json.dumps([e.details for e in failed_ledger(store_url)]) + failed.error
    assert SECRET not in kept and TOKEN not in kept


def failed_ledger(store_url: Any) -> list[Any]:
    from runtime_helpers import open_store

    store = open_store(store_url)
    with store.read() as tx:
        return list(tx.ledger_for(1))


def test_a_missing_secret_variable_is_named_not_sent(store_url, fake, monkeypatch):
    monkeypatch.delenv(SECRET_ENV)
    failed = run_once(store_url, fake)
    assert failed.error == f"no client secret: the environment variable {SECRET_ENV} is not set"
    assert fake.seen == []


def test_one_executor_serves_several_runs(fake):
    fake.on("POST", f"/api/machines/{DEV}/isolate", Answer(201, machine_action("Succeeded")))
    executor = make_executor(ExecutorConfig("defender_endpoint", timeout=10,
                                            options=options(fake, poll_interval=0)),
                             records=None)  # type: ignore[arg-type]
    runs = [executor.run(ExecRequest("apply", {"id": n, "action_type": "isolate_device"},
                                     {"type": "device", "key": f"device:{DEV}"}, f"k{n}",
                                     target={"device_id": DEV})) for n in (1, 2)]
    assert [r.ok for r in runs] == [True, True]
    assert len(fake.calls("POST", f"/api/machines/{DEV}/isolate")) == 2


def test_a_poll_that_fails_still_names_the_machine_action(store_url, fake):
    fake.on("POST", f"/api/machines/{DEV}/isolate", Answer(201, machine_action("Pending")))
    fake.on("GET", f"/api/machineactions/{MA}", Answer(500, {"error": {
        "code": "InternalServerError", "message": "oops"}}, {"Retry-After": "0"}))
    failed = run_once(store_url, fake)
    assert failed.status == "failed"
    assert failed.error == (f"GET /api/machineactions/{MA} answered 500: InternalServerError:"
                            f" oops (machine action {MA} was Pending)")
    output = queue_ledger_output(store_url)
    assert (output["machine_action_id"], output["status"]) == (MA, "Pending")


def queue_ledger_output(store_url: Any) -> Any:
    return failed_ledger(store_url)[-1].details["result"]["output"]
