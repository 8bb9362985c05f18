"""`approve --dry-run`: the exact requests the executor would send, secrets masked; nothing
is approved, sent or recorded."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from airgate.cli import main
from webhook_server import webhook

SECRET = "dry-run-secret-never-shown"  # noqa: S105 (a test secret)
APP = "11111111-2222-3333-4444-555555555555"
DEV = "1e5bc9d7e413ddd7902c2932e418702b84d0cc07"
POLICY = """\
apiVersion: airgate/v1
kind: Policy
metadata: {name: t}
spec:
  rules:
    - id: t.isolate
      match: {verdict: malicious, entity: device}
      action: isolate_device
      approval: {required: true, expires_after: 1h, quorum: QUORUM}
"""


class Box:
    def __init__(self, tmp: Path, executor: str, quorum: int = 1) -> None:
        self.tmp = tmp
        (tmp / "policy.yaml").write_text(POLICY.replace("QUORUM", str(quorum)))
        (tmp / "airgate.yaml").write_text(
            "users: {alice: [active-remediation], carol: [active-remediation]}\n"
            + (f"executors:\n  isolate_device:\n{executor}" if executor else ""))
        self.env = {"AIRGATE_DB": str(tmp / "q.db"), "AIRGATE_CONFIG": str(tmp / "airgate.yaml"),
                    "AIRGATE_ACTOR": "bob", "AIRGATE_TEST_SECRET": SECRET}
        (tmp / "ev.json").write_text(json.dumps({
            "apiVersion": "airgate/v1", "kind": "Investigation", "id": "inv-1",
            "evidence": [{"type": "device", "verdict": "malicious", "name": "ws1",
                          "fields": {"mdeDeviceId": DEV}}]}))
        made = self.run("submit", str(tmp / "ev.json"), "--policy", str(tmp / "policy.yaml"))
        assert made.exit_code == 0, made.stderr

    def run(self, *args: str):  # type: ignore[no-untyped-def]
        result = CliRunner().invoke(main, list(args), env=self.env)
        assert SECRET not in result.stdout and SECRET not in result.stderr
        return result

    def unchanged(self) -> None:
        shown = json.loads(self.run("show", "1", "--format", "json").stdout)
        assert shown["action"]["status"] == "pending"
        assert shown["approvals"] == []
        assert [e["event"] for e in shown["ledger"]] == ["created"]


def test_a_defender_dry_run_shows_the_token_and_isolate_requests_and_sends_nothing(tmp_path):
    with webhook() as hook:
        box = Box(tmp_path, "    type: defender_endpoint\n    tenant_id: contoso\n"
                  f"    client_id: {APP}\n    client_secret_env: AIRGATE_TEST_SECRET\n"
                  "    authority: https://127.0.0.1:9\n    ca_file: /nonexistent/ca.pem\n"
                  f"    base_url: {hook.url}\n")
        result = box.run("approve", "1", "--dry-run", "--actor", "alice")
        assert hook.requests == []
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("action 1 (isolate_device on device ws1): defender_endpoint would"
                        " send:")
    assert lines[1] == ("  POST https://127.0.0.1:9/contoso/oauth2/v2.0/token  (unless a token"
                        " is cached; the credential from the environment variable"
                        " AIRGATE_TEST_SECRET)")
    token_body = json.loads(lines[3].removeprefix("    body: "))
    assert token_body == {"client_id": APP, "client_secret": "***", "client_info": "1",
                          "grant_type": "client_credentials",
                          "scope": "https://api.securitycenter.microsoft.com/.default"}
    start = lines.index(f"  POST {hook.url}/api/machines/{DEV}/isolate")
    assert lines[start + 1] == "    Authorization: Bearer ***"
    body = json.loads(next(line for line in lines[start:] if line.startswith("    body: "))
                      .removeprefix("    body: "))
    assert body == {"Comment": "airgate action 1 apply [airgate:1:apply:2]",
                    "IsolationType": "Full"}
    assert any(line.startswith(f"  GET {hook.url}/api/machineactions/{{id}}  (every 5 s")
               for line in lines)
    assert lines[-1] == "dry run: nothing approved, sent or recorded"
    box.unchanged()


def test_an_http_dry_run_masks_the_signature_and_secret_headers(tmp_path):
    with webhook() as hook:
        box = Box(tmp_path, f"    type: http\n    url: {hook.url}/soar\n"
                  "    secret_env: AIRGATE_TEST_SECRET\n"
                  "    headers: {Authorization: Token abc123, X-Team: soc}\n")
        result = box.run("approve", "1", "--dry-run", "--actor", "alice", "--format", "json")
        assert hook.requests == []
    assert result.exit_code == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert (row["id"], row["executor"], row["would_run"]) == (1, "http", True)
    [request] = row["requests"]
    assert (request["method"], request["url"]) == ("POST", f"{hook.url}/soar")
    headers = request["headers"]
    assert headers["Authorization"] == "***" and headers["X-Airgate-Signature"] == "***"
    assert headers["X-Team"] == "soc" and headers["Idempotency-Key"] == "airgate:1:apply:2"
    assert "abc123" not in result.stdout
    assert request["body"]["idempotency_key"] == "airgate:1:apply:2"
    assert request["body"]["action"]["action_type"] == "isolate_device"
    box.unchanged()


def test_record_is_one_line_and_an_unmet_quorum_runs_nothing(tmp_path):
    box = Box(tmp_path, "", quorum=1)
    result = box.run("approve", "1", "--dry-run", "--actor", "alice")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "action 1 (isolate_device on device ws1): record: no external effect; the request is"
        " recorded under airgate:1:apply:2")
    box.unchanged()
    (tmp_path / "q2").mkdir()
    other = Box(tmp_path / "q2", "", quorum=2)
    result = other.run("approve", "1", "--dry-run", "--actor", "alice")
    assert result.stdout.splitlines()[0] == (
        "action 1 (isolate_device on device ws1): approval 1 of 2 would be recorded; it would"
        " not run yet")
    other.unchanged()
