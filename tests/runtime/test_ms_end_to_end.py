"""Through the CLI, a config file and the local stand-in for Entra ID and Graph: a soft
delete approved and moved back to the inbox (the catalog's way back for it: a redo to
``move_to_inbox``), a session revocation, and a user disabled then re-enabled on undo;
the remote ids in ``show`` and ``ledger export``; the secret nowhere airgate writes."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from ms_fake import CLIENT_ID, SECRET, SECRET_ENV, TENANT, TOKEN, Answer, Fake, serve

from helpers import cli

NMID = "73ca4154-58d8-43d0-a890-08dc18c52e6d"
RCPT = "hannah.jarvis@contoso.com"
OID = "87d349ed-44d7-43e1-9a83-5f2406dee5bd"
REMEDIATE = "/security/collaboration/analyzedEmails/remediate"
POLICY = """\
apiVersion: airgate/v1
kind: Policy
metadata: {name: p}
spec:
  rules:
    - id: mail
      match: {verdict: malicious, entity: analyzedMessage}
      action: soft_delete_email
      approval: {roles: [search-and-purge]}
    - id: sessions
      match: {verdict: malicious, entity: user}
      action: ACTION
      approval: {roles: [security-admin]}
"""


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with serve() as server:
        yield server


def setup(tmp_path: Path, fake: Fake, evidence: dict[str, Any], action: str = "revoke_sessions",
          ) -> list[str]:
    graph = (f"tenant_id: {TENANT}, client_id: {CLIENT_ID}, client_secret_env: {SECRET_ENV},"
             f" authority: '{fake.authority}', ca_file: '{fake.ca_file}'")
    (tmp_path / "airgate.yaml").write_text(textwrap.dedent(f"""\
        users: {{dave: [search-and-purge], fay: [search-and-purge], erin: [security-admin]}}
        executors:
          soft_delete_email: &mail {{type: graph_email, {graph}, base_url: '{fake.url}/beta'}}
          move_to_inbox: *mail
          {action}: {{type: graph_identity, {graph}, base_url: '{fake.url}/v1.0'}}
        """))
    (tmp_path / "p.yaml").write_text(POLICY.replace("ACTION", action))
    (tmp_path / "inv.json").write_text(json.dumps({
        "apiVersion": "airgate/v1", "kind": "Investigation", "id": "inv-1",
        "evidence": [{"verdict": "malicious", **evidence}]}))
    common = ["--db", str(tmp_path / "q.db"), "--config", str(tmp_path / "airgate.yaml")]
    done = cli("submit", str(tmp_path / "inv.json"), "--policy", str(tmp_path / "p.yaml"),
               *common, "--actor", "bob")
    assert done.exit_code == 0, done.output + done.stderr
    return common


def ledger(common: list[str], action_id: int) -> tuple[dict[str, Any], str]:
    shown = cli("show", str(action_id), "--format", "json", *common)
    exported = cli("ledger", "export", "--format", "json", *common)
    assert shown.exit_code == 0 and exported.exit_code == 0, shown.stderr + exported.stderr
    return json.loads(shown.output), shown.output + exported.output


def outputs(story: dict[str, Any], event: str) -> list[Any]:
    return [e["details"]["result"]["output"] for e in story["ledger"] if e["event"] == event]


def test_a_soft_delete_is_approved_then_moved_back_to_the_inbox(tmp_path, fake):
    fake.on("POST", f"/beta{REMEDIATE}",
            Answer(202, None, {"Location": "https://security.microsoft.com/ac?bulkId=b1",
                               "request-id": "r-1"}),
            Answer(202, None, {"Location": "https://security.microsoft.com/ac?bulkId=b2",
                               "request-id": "r-2"}))
    common = setup(tmp_path, fake, {"type": "analyzedMessage", "fields": {
        "networkMessageId": NMID, "recipientEmailAddress": RCPT, "subject": "invoice"}})
    said = [cli("approve", "1", *common, "--actor", "dave")]
    assert "approved and carried out: completed" in said[0].output, said[0].output
    # no undo in the catalog: the way back is a new action, approved like any other
    said.append(cli("redo", "1", "--action", "move_to_inbox", "--policy",
                    str(tmp_path / "p.yaml"), *common, "--actor", "dave"))
    assert said[-1].exit_code == 0, said[-1].output + said[-1].stderr
    said.append(cli("approve", "2", *common, "--actor", "fay"))  # not who asked for it
    assert "approved and carried out: completed" in said[-1].output, said[-1].output
    sent = [c.body for c in fake.calls("POST", f"/beta{REMEDIATE}")]
    assert [b["action"] for b in sent] == ["softDelete", "moveToInbox"]
    assert all(b["analyzedEmails"] == [{"networkMessageId": NMID, "recipientEmailAddress": RCPT}]
               for b in sent)
    first, text = ledger(common, 1)
    second, _ = ledger(common, 2)
    [deleted] = outputs(first, "completed")
    [moved] = outputs(second, "completed")
    assert (deleted["action"], deleted["tracking"], deleted["request_id"]) == (
        "softDelete", "https://security.microsoft.com/ac?bulkId=b1", "r-1")
    assert (moved["action"], moved["tracking"], moved["request_id"]) == (
        "moveToInbox", "https://security.microsoft.com/ac?bulkId=b2", "r-2")
    assert "r-1" in text and "r-2" in text  # in the export too
    # one token for the three runs, and neither it nor the secret anywhere airgate wrote
    assert len(fake.token_calls()) == 1
    everything = text + "".join(r.output + r.stderr for r in said)
    assert SECRET not in everything and TOKEN not in everything


def test_a_session_revocation_through_the_cli_keeps_graphs_request_id(tmp_path, fake):
    fake.on("POST", f"/v1.0/users/{OID}/revokeSignInSessions",
            Answer(200, {"value": True}, {"request-id": "graph-req-9"}))
    common = setup(tmp_path, fake, {"type": "user", "fields": {
        "userAccount": {"azureAdUserId": OID, "userPrincipalName": "h@contoso.com"}}})
    approved = cli("approve", "1", *common, "--actor", "erin")
    assert "approved and carried out: completed" in approved.output, approved.output
    [post] = fake.calls("POST", f"/v1.0/users/{OID}/revokeSignInSessions")
    assert post.body is None and post.headers["authorization"] == f"Bearer {TOKEN}"
    story, text = ledger(common, 1)
    [out] = outputs(story, "completed")
    assert out["request_id"] == "graph-req-9"
    assert out["client_request_id"] == post.headers["client-request-id"]
    assert out["change"] == {"revokeSignInSessions": True} and out["user"] == OID
    assert SECRET not in text + approved.output and TOKEN not in text + approved.output


def test_a_user_disabled_then_undone_is_enabled_again(tmp_path, fake):
    fake.on("PATCH", f"/v1.0/users/{OID}", Answer(204, None, {"request-id": "p-1"}),
            Answer(204, None, {"request-id": "p-2"}))
    common = setup(tmp_path, fake, {"type": "user", "fields": {
        "userAccount": {"azureAdUserId": OID}}}, action="disable_user")
    assert cli("approve", "1", *common, "--actor", "erin").exit_code == 0
    undone = cli("undo", "1", *common, "--actor", "erin")
    assert undone.exit_code == 0, undone.output + undone.stderr
    assert [c.body for c in fake.calls("PATCH")] == [{"accountEnabled": False},
                                                     {"accountEnabled": True}]
    story, _ = ledger(common, 1)
    assert story["action"]["status"] == "undone"
    assert [o["request_id"] for o in outputs(story, "completed") + outputs(story, "undone")] \
        == ["p-1", "p-2"]


def test_a_refused_token_fails_the_approval_without_the_secret_anywhere(tmp_path, fake):
    from ms_fake import TOKEN_PATH

    fake.on("POST", TOKEN_PATH, Answer(401, {
        "error": "invalid_client", "error_description": f"AADSTS7000215: bad secret {SECRET}"}))
    common = setup(tmp_path, fake, {"type": "user", "fields": {
        "userAccount": {"azureAdUserId": OID}}})
    approved = cli("approve", "1", *common, "--actor", "erin")
    story, text = ledger(common, 1)
    assert story["action"]["status"] == "failed"
    assert story["action"]["error"] == ("token request answered 401: invalid_client:"
                                        " AADSTS7000215: bad secret ***")
    assert fake.calls("POST", f"/v1.0/users/{OID}/revokeSignInSessions") == []
    everything = text + approved.output + approved.stderr
    assert "invalid_client" in everything and SECRET not in everything
