"""The whole DOMAIN.md flow from the CLI: a Graph alert under a policy, from submission
to a settled investigation: pending, approve, completed, history, undo, redo."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from airgate.cli import main

ROOT = Path(__file__).resolve().parents[1]

POLICY = """\
apiVersion: airgate/v1
kind: Policy
metadata: {name: flow}
spec:
  rules:
    - id: flow.isolate-suspicious-device
      match: {verdict: suspicious, entity: device}
      action: isolate_device
      approval: required
"""


def test_graph_alert_from_submission_to_settled_investigation(tmp_path):
    alert = (ROOT / "examples" / "graph-alert.json").read_text()
    (tmp_path / "alert.json").write_text(alert.replace('"verdict": "unknown"',
                                                       '"verdict": "suspicious"'))
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "airgate.yaml").write_text(
        "users: {alice: [active-remediation], root: [global-admin]}\n")
    env = {"AIRGATE_DB": str(tmp_path / "q.db"), "AIRGATE_CONFIG": str(tmp_path / "airgate.yaml"),
           "AIRGATE_NOW": "2024-05-01T12:00:00Z"}
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, list(args), env=env)
        assert result.exit_code == 0, result.stderr
        return result.stdout

    run("init", "--demo")  # AIRGATE_NOW pins the clock: a demo store only
    submitted = json.loads(run("submit", str(tmp_path / "alert.json"), "--policy",
                               str(tmp_path / "policy.yaml"), "--actor", "soar",
                               "--format", "json"))
    assert [(o["outcome"], o["status"]) for o in submitted] == [("created", "pending")]
    action_id = str(submitted[0]["action_id"])
    inv = submitted[0]["action"]["investigation"]

    pending = json.loads(run("actions", "--format", "json"))
    assert [a["status"] for a in pending] == ["pending"]
    assert json.loads(run("investigations", "--format", "json"))[0]["status"] == (
        "pending approval")

    assert json.loads(run("approve", action_id, "--actor", "alice", "--format", "json"))[0][
        "status"] == "completed"
    assert json.loads(run("investigations", "--format", "json"))[0] == {
        "investigation": inv, "status": "remediated", "actions": 1,
        "counts": {"completed": 1}}

    history = json.loads(run("history", "--format", "json"))
    assert [(a["id"], a["status"], a["decided_by"]) for a in history] == [
        (int(action_id), "completed", "alice")]

    assert json.loads(run("undo", action_id, "--actor", "alice", "--format", "json"))[0][
        "status"] == "undone"
    changed = json.loads(run("redo", action_id, "--action", "contain_device", "--actor",
                             "alice", "--policy", str(tmp_path / "policy.yaml"),
                             "--format", "json"))[0]
    assert (changed["status"], changed["link_id"]) == ("pending", int(action_id))
    run("approve", str(changed["id"]), "--actor", "root")

    story = json.loads(run("show", action_id, "--format", "json"))
    assert [e["event"] for e in story["ledger"]] == [
        "created", "approved", "started", "completed", "started", "undone", "superseded"]
    assert json.loads(run("investigations", "--format", "json"))[0]["status"] == "remediated"
    assert run("ledger", "verify").startswith("ledger ok: 12 entries")
