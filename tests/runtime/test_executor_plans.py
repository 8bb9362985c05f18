"""Each executor describes the requests a run would send (approve --dry-run) without
sending them: Graph's carry the run's client-request-id, the token request masks the
secret, a refused target says why, and command/record are one line."""

from __future__ import annotations

import uuid

from airgate.runtime.config import ExecutorConfig
from airgate.runtime.executors import ExecRequest, make_executor

OID = "87d349ed-44d7-43e1-9a83-5f2406dee5bd"
GRAPH = {"tenant_id": "contoso", "client_id": "11111111-2222-3333-4444-555555555555",
         "client_secret_env": "AIRGATE_TEST_UNSET_SECRET", "base_url": "http://127.0.0.1:9",
         "authority": "https://127.0.0.1:9"}


def request(action: str, entity: dict[str, str], operation: str = "apply") -> ExecRequest:
    return ExecRequest(operation, {"id": 3, "action_type": action,
                                   "undo_action": "enable_user"}, entity, "airgate:3:apply:2")


def test_a_revocation_plan_is_the_token_request_and_one_post_with_the_request_id():
    executor = make_executor(ExecutorConfig("graph_identity", options=GRAPH), records=None)  # type: ignore[arg-type]
    token, post = executor.plan(request("revoke_sessions", {"type": "user",  # type: ignore[attr-defined]
                                                            "key": f"user:{OID}"}))
    assert token.body["client_secret"] == "***"  # noqa: S105 (the mask)
    assert (post.method, post.url, post.body) == (
        "POST", f"http://127.0.0.1:9/users/{OID}/revokeSignInSessions", None)
    assert post.headers["Authorization"] == "Bearer ***"
    assert post.headers["client-request-id"] == str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                               "airgate:3:apply:2"))


def test_an_undo_plan_reenables_the_account():
    executor = make_executor(ExecutorConfig("graph_identity", options=GRAPH), records=None)  # type: ignore[arg-type]
    _, patch = executor.plan(request("disable_user", {"type": "user", "key": f"user:{OID}"},  # type: ignore[attr-defined]
                                     operation="undo"))
    assert (patch.method, patch.body) == ("PATCH", {"accountEnabled": True})


def test_a_target_the_executor_refuses_is_planned_as_a_failure():
    executor = make_executor(ExecutorConfig("graph_email", options=GRAPH), records=None)  # type: ignore[arg-type]
    plan = executor.plan(request("soft_delete_email", {"type": "mailCluster", "key": "c1"}))  # type: ignore[attr-defined]
    assert plan == ("would fail: graph_email remediates one analyzed message; a mailCluster"
                    " names none")


def test_a_command_plan_is_one_line():
    executor = make_executor(ExecutorConfig("command", argv=("/opt/edr/isolate", "--json"),
                                            timeout=30), records=None)  # type: ignore[arg-type]
    assert executor.plan(request("isolate_device", {"type": "device", "key": "d"})) == (  # type: ignore[attr-defined]
        "command: would run /opt/edr/isolate --json (no shell) with the request as JSON on"
        " stdin, key airgate:3:apply:2, time-out 30 s")
