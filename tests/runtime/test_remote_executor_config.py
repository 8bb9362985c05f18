"""The Microsoft executors from airgate.yaml: their config branches, located errors, the
end-to-end path through the CLI (approve, undo, remote ids in the ledger), and httpx
staying out of ``import airgate``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from ms_fake import SECRET, SECRET_ENV, TENANT, TOKEN, Answer, serve

from airgate.errors import InputError
from airgate.runtime.config import load_config
from helpers import cli

DEV = "1e5bc9d7e413ddd7902c2932e418702b84d0cc07"
MA = "7883e2b6-3c2b-4b80-a2b3-0f7b0d3c2f11"
CLIENT = "11111111-2222-3333-4444-555555555555"


def write_config(tmp_path: Any, url: str, extra: str = "",
                 authority: str = "https://127.0.0.1:9", ca_file: str = "/etc/airgate/ca.pem",
                 ) -> str:
    path = tmp_path / "airgate.yaml"
    path.write_text(textwrap.dedent(f"""\
        users: {{alice: [active-remediation]}}
        executors:
          isolate_device:
            type: defender_endpoint
            tenant_id: {TENANT}
            client_id: {CLIENT}
            client_secret_env: {SECRET_ENV}
            authority: {authority}
            ca_file: {ca_file}
            base_url: {url}
            isolation_type: Selective
            poll_interval: 0
            timeout: 20s
        {extra}"""))
    return str(path)


def test_a_defender_executor_config_is_read_with_its_options(tmp_path):
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9"))
    executor = config.executor_for("isolate_device")
    assert (executor.type, executor.timeout) == ("defender_endpoint", 20)
    assert dict(executor.options) == {
        "tenant_id": TENANT, "client_id": CLIENT, "client_secret_env": SECRET_ENV,
        "authority": "https://127.0.0.1:9", "ca_file": "/etc/airgate/ca.pem",
        "base_url": "http://127.0.0.1:9",
        "isolation_type": "Selective", "poll_interval": 0}


@pytest.mark.parametrize(("line", "message"), [
    ("    client_secret: hunter2", "'client_secret' was unexpected"),
    ("    severity: high", "'severity' is not one of"),
    ("    isolation_type: Half", r"'Half' is not one of \['Full', 'Selective'\]"),
])
def test_a_wrong_executor_option_is_a_located_error(tmp_path, line, message):
    path = Path(write_config(tmp_path, "http://127.0.0.1:9"))
    text = path.read_text().replace("    timeout: 20s\n", f"    timeout: 20s\n{line}\n")
    path.write_text(text.replace("    isolation_type: Selective\n", "")
                    if "isolation_type" in line else text)
    with pytest.raises(InputError, match=message) as caught:
        load_config(path)
    assert caught.value.location is not None and caught.value.location.line > 1


def test_a_graph_executor_needs_its_credentials(tmp_path):
    path = tmp_path / "airgate.yaml"
    path.write_text("executors:\n  revoke_sessions: {type: graph_identity, tenant_id: t}\n")
    with pytest.raises(InputError, match="'client_id' is a required property"):
        load_config(str(path))


def test_approve_and_undo_an_isolation_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    (tmp_path / "p.yaml").write_text(textwrap.dedent("""\
        apiVersion: airgate/v1
        kind: Policy
        metadata: {name: p}
        spec:
          rules:
            - id: isolate
              match: {verdict: malicious, entity: device}
              action: isolate_device
              approval: {roles: [active-remediation]}
    """))
    (tmp_path / "inv.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: airgate/v1
        kind: Investigation
        id: inv-1
        evidence:
          - type: device
            verdict: malicious
            fields: {{mdeDeviceId: {DEV}, deviceDnsName: ws1.contoso.com}}
    """))
    db = str(tmp_path / "q.db")
    action = {"id": MA, "type": "Isolate", "status": "Succeeded", "machineId": DEV}
    with serve() as fake:
        fake.on("POST", f"/api/machines/{DEV}/isolate", Answer(201, {**action,
                                                                     "status": "Pending"}))
        fake.on("GET", f"/api/machineactions/{MA}", Answer(200, action))
        fake.on("POST", f"/api/machines/{DEV}/unisolate", Answer(201, {
            **action, "id": "9" + MA[1:], "type": "Unisolate"}))
        config = write_config(tmp_path, fake.url, authority=fake.authority,
                              ca_file=fake.ca_file)
        common = ["--db", db, "--config", config]
        submitted = cli("submit", str(tmp_path / "inv.yaml"), "--policy",
                        str(tmp_path / "p.yaml"), *common, "--actor", "bob")
        assert submitted.exit_code == 0, submitted.output
        approved = cli("approve", "1", *common, "--actor", "alice")
        assert approved.exit_code == 0, approved.output + approved.stderr
        assert "approved and carried out: completed" in approved.output
        undone = cli("undo", "1", *common, "--actor", "alice")
        assert undone.exit_code == 0, undone.output + undone.stderr
        shown = cli("show", "1", "--format", "json", *common)
        exported = cli("ledger", "export", "--format", "json", *common)
    story = json.loads(shown.output)
    assert story["action"]["status"] == "undone"
    results = [e["details"]["result"]["output"] for e in story["ledger"]
               if e["event"] in ("completed", "undone")]
    assert [(r["type"], r["machine_action_id"], r["status"]) for r in results] == [
        ("Isolate", MA, "Succeeded"), ("Unisolate", "9" + MA[1:], "Succeeded")]
    assert fake.calls("POST", f"/api/machines/{DEV}/isolate")[0].body["IsolationType"] == \
        "Selective"
    everything = shown.output + exported.output + approved.output + approved.stderr
    assert SECRET not in everything and TOKEN not in everything


def test_import_airgate_and_the_cli_load_no_httpx():
    code = ("import sys, airgate, airgate.cli, airgate.runtime.queue; "
            "print('httpx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_the_documented_example_config_is_valid(tmp_path):
    docs = (Path(__file__).resolve().parents[2] / "docs" / "executors.md").read_text()
    example = docs.split("## The Microsoft executors\n\n```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "airgate.yaml"
    path.write_text(example)
    config = load_config(str(path))
    assert {k: v.type for k, v in config.executors.items()} == {
        "isolate_device": "defender_endpoint", "run_antivirus_scan": "defender_endpoint",
        "soft_delete_email": "graph_email", "revoke_sessions": "graph_identity",
        "disable_user": "graph_identity"}
