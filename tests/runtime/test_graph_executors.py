"""The graph_email and graph_identity executors against a local stand-in for Entra ID
and Microsoft Graph: the documented requests and answers, undo, local accounts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from ms_fake import SECRET, SECRET_ENV, TENANT, TOKEN, Answer, Fake, options, serve

from airgate.runtime.config import Config, ExecutorConfig
from airgate.runtime.executors import ExecRequest, make_executor
from runtime_helpers import decision, make_queue

NMID = "73ca4154-58d8-43d0-a890-08dc18c52e6d"
RCPT = "hannah.jarvis@contoso.com"
OID = "87d349ed-44d7-43e1-9a83-5f2406dee5bd"
DEV = "1e5bc9d7e413ddd7902c2932e418702b84d0cc07"
REMEDIATE = "/security/collaboration/analyzedEmails/remediate"
USERS = {"dave": ("search-and-purge",), "erin": ("security-admin",),
         "root": ("global-admin",)}
TRACKING = ("https://security.microsoft.com/action-center/history?filters="
            '{"bulkId":["b1"]}&tid=t1')


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with serve() as server:
        yield server


def queue_for(store_url: Any, fake: Fake, kind: str, action_types: tuple[str, ...], **opts: Any):
    executor = ExecutorConfig(kind, timeout=10, options=options(fake, retries=1, **opts))
    config = Config(users=USERS, automation=frozenset({"bob"}),
                    executors=dict.fromkeys(action_types, executor))
    return make_queue(store_url, config=config)[0]


def message(action: str = "soft_delete_email", **fields: Any):
    key = f"analyzedMessage:{NMID}:{RCPT}"
    return decision(key, action, entity_type="analyzedMessage", roles=("search-and-purge",),
                    fields={"networkMessageId": NMID, "recipientEmailAddress": RCPT,
                            "subject": "$(curl evil) ../../users", **fields})


@pytest.mark.parametrize(("action", "remote"), [
    ("soft_delete_email", "softDelete"), ("hard_delete_email", "hardDelete"),
    ("move_to_junk", "moveToJunk"), ("move_to_inbox", "moveToInbox"),
    ("move_to_deleted_items", "moveToDeletedItems"),
])
def test_each_email_action_is_one_documented_remediate_request(store_url, fake, action, remote):
    fake.on("POST", REMEDIATE, Answer(202, None, {"Location": TRACKING}))
    queue = queue_for(store_url, fake, "graph_email", (action,))
    queue.submit([message(action)], actor="bob")
    [done] = queue.approve([1], actor="dave")
    assert done.status == "completed"
    [token] = fake.calls("POST", f"/{TENANT}/oauth2/v2.0/token")
    assert token.body["scope"] == "https://graph.microsoft.com/.default"
    [post] = fake.api_calls()
    assert post.path == REMEDIATE
    assert post.body == {
        "displayName": f"airgate action 1 [{done.run_key}]",
        "description": f"airgate {action}", "severity": "medium", "action": remote,
        "remediateSendersCopy": False,
        "analyzedEmails": [{"networkMessageId": NMID, "recipientEmailAddress": RCPT}]}
    assert post.headers["authorization"] == f"Bearer {TOKEN}"
    assert post.headers["client-request-id"] == str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                               done.run_key))
    assert done.result == {"action": remote, "network_message_id": NMID, "recipient": RCPT,
                           "http_status": 202, "tracking": TRACKING, "request_id": "",
                           "client_request_id": str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                               done.run_key or ""))}
    assert queue.ledger_entries(1)[-1].details["result"]["output"]["tracking"] == TRACKING


def test_severity_comes_from_the_config(store_url, fake):
    fake.on("POST", REMEDIATE, Answer(202))
    queue = queue_for(store_url, fake, "graph_email", ("soft_delete_email",), severity="high")
    queue.submit([message()], actor="bob")
    queue.approve([1], actor="dave")
    assert fake.api_calls()[0].body["severity"] == "high"


def test_a_mail_cluster_is_not_remediated_as_one_message(store_url, fake):
    queue = queue_for(store_url, fake, "graph_email", ("soft_delete_email_cluster",))
    queue.submit([decision("mailCluster:q", "soft_delete_email_cluster",
                           entity_type="mailCluster", roles=("search-and-purge",))],
                 actor="bob")
    [failed] = queue.approve([1], actor="dave")
    assert failed.status == "failed"
    assert failed.error == "graph_email does not carry out soft_delete_email_cluster"
    assert fake.seen == []


def test_email_actions_have_no_undo_only_a_new_move(fake):
    executor = make_executor(ExecutorConfig("graph_email", options=options(fake)), records=None)  # type: ignore[arg-type]
    result = executor.run(ExecRequest(
        "undo", {"id": 1, "action_type": "soft_delete_email"},
        {"type": "analyzedMessage", "key": f"analyzedMessage:{NMID}:{RCPT}"}, "k1",
        target={"network_message_id": NMID, "recipient": RCPT}))
    assert not result.ok
    assert "redo ID --action move_to_inbox" in result.message
    assert fake.seen == []


def test_a_graph_error_is_reported_with_its_message(store_url, fake):
    fake.on("POST", REMEDIATE, Answer(403, {"error": {
        "code": "Forbidden", "message": "Missing role SecurityAnalyzedMessage.ReadWrite.All"}}))
    queue = queue_for(store_url, fake, "graph_email", ("soft_delete_email",))
    queue.submit([message()], actor="bob")
    [failed] = queue.approve([1], actor="dave")
    assert failed.error == (f"POST {REMEDIATE} answered 403: Forbidden: Missing role"
                            " SecurityAnalyzedMessage.ReadWrite.All")


# ------------------------------------------------------------------ identity
IDENTITY = ("revoke_sessions", "disable_user", "force_password_reset", "contain_user")


def user(action: str, account: dict[str, Any], key: str | None = None):
    return decision(key or f"user:{OID}", action, entity_type="user",
                    roles=("security-admin",), fields={"userAccount": account})


def test_revoking_sessions_posts_revoke_sign_in_sessions(store_url, fake):
    fake.on("POST", f"/users/{OID}/revokeSignInSessions", Answer(200, {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean",
        "value": True}))
    queue = queue_for(store_url, fake, "graph_identity", IDENTITY)
    queue.submit([user("revoke_sessions", {"azureAdUserId": OID,
                                           "userPrincipalName": "ann@contoso.com"})],
                 actor="bob")
    [done] = queue.approve([1], actor="erin")
    assert done.status == "completed"
    [post] = fake.api_calls()
    assert (post.method, post.path, post.body) == (
        "POST", f"/users/{OID}/revokeSignInSessions", None)
    assert post.headers["authorization"] == f"Bearer {TOKEN}"
    assert done.result == {"user": OID, "http_status": 200,
                           "change": {"revokeSignInSessions": True}, "request_id": "",
                           "client_request_id": str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                               done.run_key or ""))}


def test_disabling_a_user_patches_account_enabled_and_undo_reenables(store_url, fake):
    fake.on("PATCH", f"/users/{OID}", Answer(204))
    queue = queue_for(store_url, fake, "graph_identity", IDENTITY)
    queue.submit([user("disable_user", {"azureAdUserId": OID})], actor="bob")
    assert queue.approve([1], actor="erin")[0].status == "completed"
    assert queue.undo([1], actor="erin")[0].status == "undone"
    assert [(c.method, c.path, c.body) for c in fake.api_calls()] == [
        ("PATCH", f"/users/{OID}", {"accountEnabled": False}),
        ("PATCH", f"/users/{OID}", {"accountEnabled": True})]
    assert queue.ledger_entries(1)[-1].details["result"]["output"]["change"] == {
        "accountEnabled": True}


def test_a_password_reset_is_required_through_the_password_profile(store_url, fake):
    upn = "ann@contoso.com"
    fake.on("PATCH", f"/users/{upn}", Answer(204))
    queue = queue_for(store_url, fake, "graph_identity", IDENTITY)
    queue.submit([user("force_password_reset", {"userPrincipalName": upn}, key=f"user:{upn}")],
                 actor="bob")
    assert queue.approve([1], actor="erin")[0].status == "completed"
    [patch] = fake.api_calls()
    assert (patch.path, patch.body) == (
        f"/users/{upn}", {"passwordProfile": {"forceChangePasswordNextSignIn": True}})


def test_a_local_account_is_never_sent_to_entra(store_url, fake):
    queue = queue_for(store_url, fake, "graph_identity", IDENTITY)
    queue.submit([user("disable_user", {"accountName": "root"}, key=f"user:root@{DEV}")],
                 actor="bob")
    [failed] = queue.approve([1], actor="erin")
    assert failed.status == "failed"
    assert "no Entra identity (object id or UPN)" in failed.error
    assert fake.seen == []


def test_an_upn_that_could_leave_the_path_is_refused(store_url, fake):
    queue = queue_for(store_url, fake, "graph_identity", IDENTITY)
    queue.submit([user("revoke_sessions", {"userPrincipalName": "a/../../me@x.com?$x=1"},
                       key="user:odd")], actor="bob")
    [failed] = queue.approve([1], actor="erin")
    assert failed.status == "failed" and "no Entra identity" in failed.error
    assert fake.seen == []


def test_containing_a_user_is_not_offered(store_url, fake):
    queue = queue_for(store_url, fake, "graph_identity", IDENTITY)
    queue.submit([user("contain_user", {"azureAdUserId": OID})], actor="bob")
    [failed] = queue.approve([1], actor="root")
    assert failed.error == "graph_identity does not carry out contain_user"
    assert fake.seen == []


def test_a_reconciled_graph_run_sends_the_same_request_once_more(fake):
    fake.on("POST", REMEDIATE, Answer(202))
    executor = make_executor(ExecutorConfig("graph_email", options=options(fake)), records=None)  # type: ignore[arg-type]
    request = ExecRequest("apply", {"id": 1, "action_type": "soft_delete_email"},
                          {"type": "analyzedMessage", "key": f"analyzedMessage:{NMID}:{RCPT}"},
                          "airgate:1:apply:2", reconcile=True)
    assert executor.run(request).ok
    [post] = fake.api_calls()
    assert post.body["displayName"] == "airgate action 1 [airgate:1:apply:2]"
    assert post.body["analyzedEmails"] == [{"networkMessageId": NMID,
                                            "recipientEmailAddress": RCPT}]


def test_a_service_that_cannot_be_reached_is_a_failure_not_a_traceback(fake, monkeypatch):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    executor = make_executor(ExecutorConfig("graph_identity", options={
        **options(fake), "base_url": closed}), records=None)  # type: ignore[arg-type]
    result = executor.run(ExecRequest("apply", {"id": 1, "action_type": "revoke_sessions"},
                                      {"type": "user", "key": f"user:{OID}"}, "k1"))
    assert not result.ok
    assert result.message == (f"POST /users/{OID}/revokeSignInSessions: network error"
                              " (ConnectError)")
