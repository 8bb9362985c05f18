"""`airgate executors check`: the executor each catalog action type runs under the governing
config, and whether its secret variables are set; it calls nothing and prints no secret."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from airgate.catalog import DEFAULT_CATALOG
from airgate.cli import main

SECRET = "ms-secret-never-shown"  # noqa: S105 (a test secret)
MS = ("    type: defender_endpoint\n    tenant_id: contoso.onmicrosoft.com\n"
      "    client_id: 11111111-2222-3333-4444-555555555555\n"
      "    client_secret_env: AIRGATE_TEST_MS_SECRET\n")
HOOK = "    type: http\n    url: https://soar.example/hooks\n    secret_env: AIRGATE_TEST_HOOK\n"


def write(tmp: Path, name: str, executors: str, users: str = "alice: [active-remediation]"):
    path = tmp / name
    path.write_text(f"users: {{{users}}}\nexecutors:\n{executors}")
    return path


def run(tmp: Path, *args: str, **env: str):  # type: ignore[no-untyped-def]
    base = {"AIRGATE_DB": str(tmp / "q.db"), "AIRGATE_TEST_MS_SECRET": "",
            "AIRGATE_TEST_HOOK": ""}
    result = CliRunner().invoke(main, list(args), env={**base, **env})
    assert SECRET not in result.stdout and SECRET not in result.stderr
    return result


def test_a_configured_executor_without_its_secret_fails_the_check(tmp_path):
    config = write(tmp_path, "airgate.yaml", f"  isolate_device:\n{MS}")
    result = run(tmp_path, "executors", "check", "--config", str(config))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"executors from: {config} (no store yet)"
    [isolate] = [line for line in lines if line.startswith("isolate_device ")]
    assert "defender_endpoint" in isolate
    assert ("MISSING: the environment variable AIRGATE_TEST_MS_SECRET is not set" in isolate)
    assert "https://api.securitycenter.microsoft.com" in isolate
    # every catalog action type has its line, one executor each
    assert len(lines) == 1 + len(list(DEFAULT_CATALOG))


def test_with_the_secret_set_it_passes_and_json_names_only_the_variable(tmp_path):
    config = write(tmp_path, "airgate.yaml", f"  isolate_device:\n{MS}")
    result = run(tmp_path, "executors", "check", "--config", str(config), "--format", "json",
                 AIRGATE_TEST_MS_SECRET=SECRET)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    rows = {row["action_type"]: row for row in report["executors"]}
    assert set(rows) == {spec.id for spec in DEFAULT_CATALOG}
    assert rows["isolate_device"]["executor"] == "defender_endpoint"
    assert rows["isolate_device"]["secrets"] == {"AIRGATE_TEST_MS_SECRET": True}
    assert rows["kill_process"] == {
        "action_type": "kill_process", "executor": "record",
        "target": "the store (no external effect)", "secrets": {}, "ok": True, "problems": [],
        "warnings": []}


def test_the_config_pushed_to_the_store_decides_not_the_local_file(tmp_path):
    pushed = write(tmp_path, "pushed.yaml", f"  revoke_sessions:\n{HOOK}",
                   users="alice: [active-remediation], root: [global-admin]")
    done = run(tmp_path, "init", "--config", str(pushed))
    assert done.exit_code == 0, done.stderr
    done = run(tmp_path, "config", "push", str(pushed), "--actor", "root")
    assert done.exit_code == 0, done.stderr
    local = write(tmp_path, "local.yaml", f"  isolate_device:\n{MS}")
    result = run(tmp_path, "executors", "check", "--config", str(local), "--format", "json",
                 AIRGATE_TEST_HOOK="set")
    assert result.exit_code == 0, result.stdout
    report = json.loads(result.stdout)
    assert report["source"].startswith("the config pushed to the store by root at ")
    rows = {row["action_type"]: row for row in report["executors"]}
    assert rows["revoke_sessions"]["executor"] == "http"
    assert rows["revoke_sessions"]["target"] == "POST https://soar.example/hooks"
    assert rows["isolate_device"]["executor"] == "record"


def test_without_any_config_every_action_is_recorded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(tmp_path, "executors", "check")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "executors from: no config: all recorded"


def test_approve_says_an_unanswered_request_is_left_running_for_tick(tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Drop(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # read the request, then hang up without an answer
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Drop)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/soar"
        config = write(tmp_path, "airgate.yaml", f"  isolate_device:\n    type: http\n"
                       f"    url: {url}\n    secret_env: AIRGATE_TEST_HOOK\n")
        (tmp_path / "policy.yaml").write_text(
            "apiVersion: airgate/v1\nkind: Policy\nmetadata: {name: t}\nspec:\n  rules:\n"
            "    - id: t.isolate\n      match: {verdict: malicious, entity: device}\n"
            "      action: isolate_device\n      approval: {required: true}\n")
        (tmp_path / "ev.json").write_text(json.dumps({
            "apiVersion": "airgate/v1", "kind": "Investigation", "id": "inv-1",
            "evidence": [{"type": "device", "verdict": "malicious", "name": "ws1",
                          "fields": {"mdeDeviceId": "d" * 40}}]}))
        env = {"AIRGATE_CONFIG": str(config), "AIRGATE_TEST_HOOK": "hook-secret"}
        made = run(tmp_path, "submit", str(tmp_path / "ev.json"), "--policy",
                   str(tmp_path / "policy.yaml"), "--actor", "bob", **env)
        assert made.exit_code == 0, made.stderr
        done = run(tmp_path, "approve", "1", "--actor", "alice", **env)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert done.exit_code == 0, done.stderr
    assert done.stdout.splitlines() == [
        "action 1 (isolate_device on device ws1): approved; outcome unknown (no answer from"
        " the executor): left running under airgate:1:apply:2 for `airgate tick` to reconcile"]
