"""The http executor and notifications through the CLI: airgate.yaml declares them, the
secret comes from the environment and never shows in output or the ledger."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from airgate.cli import main
from airgate.runtime import notify
from airgate.runtime.executors.http import verify
from webhook_server import Reply, webhook

SECRET = "cli-secret-never-shown"  # noqa: S105 (a test secret)
POLICY = """\
apiVersion: airgate/v1
kind: Policy
metadata: {name: t}
spec:
  rules:
    - id: t.isolate
      match: {verdict: malicious, entity: device}
      action: isolate_device
      approval: {required: true, expires_after: 1h}
"""


def evidence(inv: str, device: str) -> str:
    return json.dumps({"apiVersion": "airgate/v1", "kind": "Investigation", "id": inv,
                       "evidence": [{"type": "device", "verdict": "malicious", "name": device,
                                     "fields": {"mdeDeviceId": device}}]})


class Env:
    def __init__(self, tmp: Path, url: str) -> None:
        self.tmp = tmp
        (tmp / "policy.yaml").write_text(POLICY)
        (tmp / "airgate.yaml").write_text(
            "users: {alice: [active-remediation]}\n"
            "executors:\n  isolate_device:\n    type: http\n"
            f"    url: {url}/soar\n    secret_env: AIRGATE_TEST_SECRET\n    timeout: 5s\n"
            f"notifications:\n  url: {url}/chat\n  secret_env: AIRGATE_TEST_SECRET\n"
            "  link: https://airgate.example/actions/{id}\n  timeout: 5s\n")
        self.env = {"AIRGATE_DB": str(tmp / "q.db"), "AIRGATE_CONFIG": str(tmp / "airgate.yaml"),
                    "AIRGATE_NOW": "2024-05-01T12:00:00Z", "AIRGATE_ACTOR": "bob",
                    "AIRGATE_TEST_SECRET": SECRET}
        assert self.run("init", "--demo").exit_code == 0

    def run(self, *args: str, **env: str):  # type: ignore[no-untyped-def]
        result = CliRunner().invoke(main, list(args), env={**self.env, **env})
        assert notify.flush(10)
        assert SECRET not in result.stdout and SECRET not in result.stderr
        return result

    def submit(self, inv: str, device: str):  # type: ignore[no-untyped-def]
        return self.submit_with(inv, device)

    def submit_with(self, inv: str, device: str, **env: str):  # type: ignore[no-untyped-def]
        path = self.tmp / f"{inv}.json"
        path.write_text(evidence(inv, device))
        return self.run("submit", str(path), "--policy", str(self.tmp / "policy.yaml"), **env)


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify, "BACKOFF", 0.01)


def chat(hook) -> list[tuple[str, int, str]]:  # type: ignore[no-untyped-def]
    return [(m["event"], m["action"]["id"], m["link"]) for m in
            (json.loads(r.body) for r in hook.requests if r.path == "/chat")]


def test_approve_calls_the_soar_and_notifications_follow_the_queue(tmp_path):
    link = "https://airgate.example/actions/{}".format
    with webhook() as hook:
        cli = Env(tmp_path, hook.url)
        assert cli.submit("inv-1", "d1").exit_code == 0
        assert cli.submit("inv-2", "d2").exit_code == 0
        assert chat(hook) == [("pending", 1, link(1)), ("pending", 2, link(2))]
        done = cli.run("approve", "1", AIRGATE_ACTOR="alice")
        assert done.exit_code == 0, done.stderr
        assert "approved and carried out: completed" in done.stdout
        [soar] = [r for r in hook.requests if r.path == "/soar"]
        assert verify(SECRET.encode(), soar.headers["x-airgate-timestamp"], soar.body,
                      soar.headers["x-airgate-signature"])
        assert soar.headers["idempotency-key"] == "airgate:1:apply:2"
        hook.replies = [Reply(500, b"soar is down", {})]
        failed = cli.run("approve", "2", AIRGATE_ACTOR="alice")
        assert failed.exit_code == 0, failed.stderr
        assert "failed: HTTP 500: soar is down" in failed.stdout
        hook.replies = [Reply()]
        cli.submit("inv-3", "d3")
        expired = cli.run("tick", AIRGATE_NOW="2024-05-01T14:00:00Z")
        assert "expired 1 action(s): 3" in expired.stdout
        story = cli.run("show", "1", "2", "--format", "json")
    assert ("failed", 2, link(2)) in chat(hook)
    assert ("expired", 3, link(3)) in chat(hook)
    assert SECRET not in story.stdout and "AIRGATE_TEST_SECRET" not in story.stdout


def test_a_notification_endpoint_that_is_down_fails_no_command(tmp_path):
    with webhook() as hook:
        url = hook.url
    cli = Env(tmp_path, url)  # nothing listens: the chat is down, so is the SOAR
    made = cli.submit("inv-1", "d1")
    assert made.exit_code == 0, made.stderr
    approved = cli.run("approve", "1", AIRGATE_ACTOR="alice")
    assert approved.exit_code == 0, approved.stderr
    assert "failed: cannot reach 127.0.0.1: ConnectError" in approved.stdout
    expired = cli.run("tick", AIRGATE_NOW="2024-05-02T12:00:00Z")
    assert expired.exit_code == 0, expired.stderr


def test_the_config_check_names_a_bad_notification_url(tmp_path):
    (tmp_path / "airgate.yaml").write_text(
        "notifications:\n  url: ftp://chat.example/\n  secret_env: X\n")
    result = CliRunner().invoke(main, ["actions"], env={
        "AIRGATE_DB": str(tmp_path / "q.db"), "AIRGATE_CONFIG": str(tmp_path / "airgate.yaml")})
    assert result.exit_code == 1
    assert "airgate.yaml:2:" in result.stderr and "ftp://chat.example/" in result.stderr


def test_a_pushed_config_decides_where_notifications_go(tmp_path):
    with webhook() as hook, webhook() as other:
        cli = Env(tmp_path, hook.url)
        config = (tmp_path / "airgate.yaml").read_text().replace(
            "users: {alice: [active-remediation]}", "users: {alice: [active-remediation],"
            " root: [global-admin]}")
        (tmp_path / "airgate.yaml").write_text(config)
        pushed = cli.run("config", "push", str(tmp_path / "airgate.yaml"), "--actor", "root")
        assert pushed.exit_code == 0, pushed.stderr
        # A local file naming another endpoint is ignored (with a warning): the store's governs.
        (tmp_path / "local.yaml").write_text(
            f"notifications:\n  url: {other.url}/chat\n  secret_env: AIRGATE_TEST_SECRET\n")
        made = cli.submit_with("inv-1", "d1", AIRGATE_CONFIG=str(tmp_path / "local.yaml"))
        assert made.exit_code == 0, made.stderr
        assert "ignored" in made.stderr
    assert [e for e, _, _ in chat(hook)] == ["pending"]
    assert other.requests == []


def test_commands_that_send_nothing_do_not_import_httpx():
    code = ("import sys, airgate.cli, airgate.runtime.queue; "
            "print('httpx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
