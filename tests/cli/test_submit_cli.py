"""`airgate submit` on streams: resubmission, quiet investigations, a poison line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from airgate.cli import main
from airgate.runtime import submit as submit_mod

POLICY = """\
apiVersion: airgate/v1
kind: Policy
metadata: {name: t}
spec:
  rules:
    - id: t.isolate
      match: {verdict: malicious, entity: device}
      action: isolate_device
      approval: required
"""


def line(i: int, verdict: str = "malicious") -> str:
    return json.dumps({"apiVersion": "airgate/v1", "kind": "Investigation", "id": f"inv{i}",
                       "evidence": [{"type": "device", "verdict": verdict, "name": f"ws{i}",
                                     "fields": {"mdeDeviceId": f"d{i}"}}]})


def run(tmp_path: Path, *args: str):  # type: ignore[no-untyped-def]
    env = {"AIRGATE_DB": str(tmp_path / "q.db"), "AIRGATE_NOW": "2024-05-01T12:00:00Z",
           "AIRGATE_ACTOR": "bob", "AIRGATE_CONFIG": ""}
    return CliRunner().invoke(main, list(args), env=env)


@pytest.fixture
def policy(tmp_path: Path) -> str:
    made = run(tmp_path, "init", "--demo")  # the clock is pinned: only a demo store allows it
    assert made.exit_code == 0, made.stderr
    (tmp_path / "p.yaml").write_text(POLICY)
    return str(tmp_path / "p.yaml")


def test_a_poison_line_after_several_batches_stores_nothing_and_says_where(
        tmp_path, policy, monkeypatch):
    monkeypatch.setattr(submit_mod, "BATCH", 3)
    lines = [line(i) for i in range(10)]
    lines[7] = "{not json"
    (tmp_path / "a.ndjson").write_text("\n".join(lines) + "\n")
    result = run(tmp_path, "submit", str(tmp_path / "a.ndjson"), "--policy", policy)
    assert result.exit_code == 1
    assert "a.ndjson:8:2: invalid JSON" in result.stderr
    listed = run(tmp_path, "actions", "--format", "json")
    assert json.loads(listed.stdout) == []


def test_a_batch_failing_in_the_store_prints_what_was_stored(tmp_path, policy, monkeypatch):
    monkeypatch.setattr(submit_mod, "BATCH", 2)
    from airgate.runtime.store import tx as tx_mod

    real = tx_mod.Tx.insert_actions
    calls = []

    def failing_third(self, rows):  # type: ignore[no-untyped-def]
        calls.append(len(rows))
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(self, rows)

    monkeypatch.setattr(tx_mod.Tx, "insert_actions", failing_third)
    (tmp_path / "a.ndjson").write_text("\n".join(line(i) for i in range(6)) + "\n")
    result = run(tmp_path, "submit", str(tmp_path / "a.ndjson"), "--policy", policy)
    assert result.exit_code == 1
    assert result.stderr == (
        "airgate: error: submit stopped at decision 5 of 6 (" + str(tmp_path / "a.ndjson")
        + ":5): RuntimeError: disk full; the 4 decisions before it were stored (4 created,"
        " 0 merged, 0 unchanged, 0 excluded), the 2 from it on were not; submitting the same"
        " evidence again stores only what is missing\n")
    assert [row.split()[0] for row in result.stdout.splitlines()[1:]] == ["1", "2", "3", "4"]


def test_resubmitting_a_file_is_idempotent_and_quiet_investigations_show(tmp_path, policy):
    (tmp_path / "a.ndjson").write_text(
        "\n".join([line(1), line(2, verdict="noThreatsFound")]) + "\n")
    first = run(tmp_path, "submit", str(tmp_path / "a.ndjson"), "--policy", policy)
    assert first.exit_code == 0, first.stderr
    again = run(tmp_path, "submit", str(tmp_path / "a.ndjson"), "--policy", policy)
    assert "already submitted: action 1, pending" in again.stdout
    rows = json.loads(run(tmp_path, "investigations", "--format", "json").stdout)
    assert [(r["investigation"], r["status"], r["actions"]) for r in rows] == [
        ("inv1", "pending approval", 1), ("inv2", "no threats found", 0)]
    assert len(json.loads(run(tmp_path, "show", "1", "--format", "json").stdout)[
        "evidence"]) == 1
