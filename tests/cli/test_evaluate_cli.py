"""`airgate evaluate`: formats, explain, safe rendering and exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import Result

from airgate.engine.core import compile
from airgate.evidence.reader import load_evidence
from airgate.policy.loader import load_policy_text
from helpers import ROOT, cli, policy_doc

POLICY = policy_doc("""\
    - id: quarantine
      match:
        verdict: malicious
        entity: file
        where:
          - field: fileDetails.fileSize
            gt: 10
          - field: fileDetails.fileName
            glob: "*.exe"
      action: quarantine_file
      approval: auto
    - id: quarantine-strict
      match: {verdict: [malicious, suspicious], entity: file}
      action: quarantine_file
      approval: {roles: [active-remediation, soc-lead], quorum: 2}
    - id: safe-tools
      effect: exclude
      reason: our own tools
      match:
        entity: file
        where: {field: fileDetails.filePath, glob: "c:/tools*"}
      actions: [quarantine_file]
    - id: isolate
      match: {verdict: malicious, entity: device}
      action: isolate_device
      approval: auto
""", name="t")

EVIDENCE = """\
apiVersion: airgate/v1
kind: Investigation
id: inv-1
evidence:
  - type: file
    verdict: malicious
    fields:
      fileDetails: {fileName: "evil.exe", filePath: "C:\\\\Users\\\\x", sha256: "aa", fileSize: 50}
  - type: file
    verdict: suspicious
    fields:
      fileDetails: {fileName: "tool.exe", filePath: "C:\\\\Tools", sha256: "bb", fileSize: 50}
  - type: device
    verdict: suspicious
    fields: {mdeDeviceId: "d1", deviceDnsName: "pc1"}
"""


@pytest.fixture()
def files(tmp_path: Path) -> tuple[str, str]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    evidence = tmp_path / "inv.yaml"
    evidence.write_text(EVIDENCE)
    return str(policy), str(evidence)


def run(*args: str) -> Result:
    return cli("evaluate", *args)


def test_table_default(files: tuple[str, str]) -> None:
    policy, evidence = files
    result = run(evidence, "--policy", policy)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["INVESTIGATION", "ENTITY", "TYPE", "NAME", "ACTION", "APPROVAL",
                                "RULES", "EXCLUDED", "BY"]
    assert "required: active-remediation,soc-lead x2" in lines[1]
    assert "quarantine,quarantine-strict" in lines[1]
    assert lines[2].endswith("safe-tools")
    assert len(lines) == 3
    assert result.stderr == ""


def test_json_matches_schema_and_library(files: tuple[str, str]) -> None:
    policy, evidence = files
    result = run(evidence, "--policy", policy, "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    schema_path = ROOT / "src/airgate/schemas/decision.schema.json"
    schema = json.loads(schema_path.read_text())
    for decision in document["decisions"]:
        jsonschema.validate(decision, schema)
    assert [(d["entity"]["name"], d["excluded"]) for d in document["decisions"]] == [
        ("evil.exe", False), ("tool.exe", True)]
    assert document["warnings"] == []
    engine = compile(load_policy_text(POLICY, file=policy))
    assert len(engine.evaluate(load_evidence([evidence]))) == 2


def test_ndjson_one_decision_per_line(files: tuple[str, str]) -> None:
    policy, evidence = files
    result = run(evidence, evidence, "--policy", policy, "--format", "ndjson")
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    # the same investigation read twice in a row merges into one run
    assert [r["entity"]["name"] for r in records] == ["evil.exe", "tool.exe"]


def test_explain_names_deciding_conditions(files: tuple[str, str]) -> None:
    policy, evidence = files
    result = run(evidence, "--policy", policy, "--explain")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "rule quarantine (action): matched" in out
    assert 'fileDetails.fileSize gt 10: held (value: 50)' in out
    assert 'fileDetails.fileName glob "*.exe": held (value: "evil.exe")' in out
    assert "rule safe-tools (exclude): matched" in out
    # the suspicious device got nothing: the nearest rule and what failed
    assert "no decision for device pc1 (suspicious)" in out
    assert "rule isolate (action): did not match" in out
    assert 'verdict in ["malicious"]: FAILED' in out


def test_explain_json(files: tuple[str, str]) -> None:
    policy, evidence = files
    result = run(evidence, "--policy", policy, "--explain", "--format", "json")
    document = json.loads(result.stdout)
    rules = document["decisions"][0]["explanation"]["rules"]
    assert [r["rule"] for r in rules] == ["quarantine", "quarantine-strict"]
    conds = [c for c in rules[0]["conditions"] if c["kind"] == "condition"]
    assert [(c["field"], c["actual"], c["held"]) for c in conds] == [
        ("fileDetails.fileSize", 50, True), ("fileDetails.fileName", "evil.exe", True)]
    [unmatched] = document["no_decision"]
    assert unmatched["nearest"][0]["rule"] == "isolate"


def test_hostile_strings_are_escaped_in_table(tmp_path: Path, files: tuple[str, str]) -> None:
    policy, _ = files
    evidence = tmp_path / "bad.json"
    evidence.write_text(json.dumps({
        "apiVersion": "airgate/v1", "kind": "Investigation", "id": "inv\x1b[2J",
        "evidence": [{"type": "file", "verdict": "malicious", "fields": {"fileDetails": {
            "fileName": "a\x1b[31m.exe\nFAKE  row\u202e", "sha256": "cc", "fileSize": 99}}}]}))
    result = run(str(evidence), "--policy", policy)
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert "a\\e[31m.exe\\nFAKE  row\\u202e" in lines[1]
    assert lines[1].startswith("inv\\e[2J")
    explained = run(str(evidence), "--policy", policy, "--explain").stdout
    assert "\x1b" not in explained and "\nFAKE" not in explained


def test_bad_evidence_is_located_exit_1(tmp_path: Path, files: tuple[str, str]) -> None:
    policy, _ = files
    evidence = tmp_path / "bad.yaml"
    evidence.write_text("apiVersion: airgate/v1\nkind: Investigation\nid: x\nevidence:\n"
                        "  - type: file\n    verdict: wicked\n    fields: {}\n")
    result = run(str(evidence), "--policy", policy)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"airgate: error: {evidence}:")
    assert "Traceback" not in result.stderr


def test_hostile_keys_are_escaped_in_error_messages(tmp_path: Path,
                                                   files: tuple[str, str]) -> None:
    # The error names the unknown key twice: in the message and in its JSON path.
    key = "\rFAKE\b\u202e\x1b]0;title\x07"
    evidence = tmp_path / "bad.json"
    evidence.write_text(json.dumps({
        "apiVersion": "airgate/v1", "kind": "Investigation", "id": "x",
        "evidence": [{"type": "file", "verdict": "malicious", "fields": {}, key: 1}]}))
    result = run(str(evidence), "--policy", files[0])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"airgate: error: {evidence}:1:")
    assert "unknown field" in result.stderr
    assert not any(ch in result.stderr for ch in "\r\b\u202e\x1b\x07")
    assert result.stderr.count("\n") == 1


def test_missing_evidence_file_exit_1(files: tuple[str, str]) -> None:
    result = run("/nonexistent.yaml", "--policy", files[0])
    assert result.exit_code == 1
    assert "/nonexistent.yaml" in result.stderr


def test_bad_policy_lists_every_error_exit_1(tmp_path: Path, files: tuple[str, str]) -> None:
    policy = tmp_path / "bad.yaml"
    policy.write_text(POLICY.replace("quarantine_file\n      approval: auto",
                                     "no_such_action\n      approval: auto"))
    result = run(files[1], "--policy", str(policy))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"airgate: error: {policy}:")
    assert result.stdout == ""


def test_durable_engine_unavailable_is_usage_error(files: tuple[str, str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "airgate.engine.durable", None)
    result = run(files[1], "--policy", files[0], "--engine", "durable")
    assert result.exit_code == 2
    assert "durable engine is not available" in result.stderr
    assert "pip install 'airgate[durable]'" in result.stderr


def test_today_makes_exclusions_expire(tmp_path: Path, files: tuple[str, str]) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY.replace("reason: our own tools",
                                     "reason: our own tools\n      expires: 2030-01-01"))
    args = [files[1], "--policy", str(policy), "--format", "json"]
    before = json.loads(run(*args, "--today", "2029-12-31").stdout)
    after = json.loads(run(*args, "--today", "2030-01-02").stdout)
    assert before["decisions"][1]["suppressed_by"] == ["safe-tools"]
    assert after["decisions"][1]["suppressed_by"] == []


def test_no_decisions(files: tuple[str, str], tmp_path: Path) -> None:
    evidence = tmp_path / "e.yaml"
    evidence.write_text("apiVersion: airgate/v1\nkind: Investigation\nid: x\nevidence: []\n")
    result = run(str(evidence), "--policy", files[0])
    assert (result.exit_code, result.stdout) == (0, "no decisions\n")


# ---------------------------------------------------------------- --strict and no evidence
LEGACY = ROOT / "tests" / "data" / "evidence" / "legacy-alerts.json"
UNKNOWN_TYPE = {"id": "a", "evidence": [
    {"@odata.type": "#microsoft.graph.security.quantumWidgetEvidence", "verdict": "malicious"},
    {"@odata.type": "#microsoft.graph.security.deviceEvidence", "verdict": "malicious",
     "mdeDeviceId": "d1"}]}


def test_legacy_alerts_warn_and_strict_exits_1(files: tuple[str, str]) -> None:
    plain = run(str(LEGACY), "--policy", files[0])
    assert (plain.exit_code, plain.stdout) == (0, "no decisions\n")
    assert f"airgate: warning: {LEGACY}: warning: no-evidence: no evidence read from this" in (
        plain.stderr)
    assert "legacy Microsoft Graph security alert" in plain.stderr
    strict = run(str(LEGACY), "--policy", files[0], "--strict")
    assert (strict.exit_code, strict.stdout) == (1, "no decisions\n")
    assert strict.stderr.endswith(
        "airgate: error: --strict: reading the evidence gave 1 warning\n")


@pytest.mark.parametrize("fmt", ["table", "json", "ndjson"])
def test_strict_fails_on_unknown_evidence_types_but_writes_decisions(
        tmp_path: Path, files: tuple[str, str], fmt: str) -> None:
    evidence = tmp_path / "alert.json"
    evidence.write_text(json.dumps(UNKNOWN_TYPE))
    args = [str(evidence), "--policy", files[0], "--format", fmt]
    plain, strict = run(*args), run(*args, "--strict")
    assert (plain.exit_code, strict.exit_code) == (0, 1)
    assert strict.stdout == plain.stdout and "isolate_device" in strict.stdout
    assert "unknown-evidence-type" in strict.stderr
    assert "--strict: reading the evidence gave 1 warning" in strict.stderr


def test_strict_passes_clean_evidence(files: tuple[str, str]) -> None:
    result = run(files[1], "--policy", files[0], "--strict")
    assert (result.exit_code, result.stderr) == (0, "")


def test_strict_is_documented_in_help() -> None:
    assert "--strict" in run("--help").stdout
    assert "--strict" in cli("submit", "--help").stdout


def test_incidents_are_evaluated(files: tuple[str, str]) -> None:
    incidents = ROOT / "tests" / "data" / "evidence" / "graph-incidents.json"
    result = run(str(incidents), "--policy", str(ROOT / "policies"), "--format", "json")
    assert result.exit_code == 0, result.stderr
    found = {(d["investigation"], d["action"]) for d in json.loads(result.stdout)["decisions"]}
    assert ("2972395", "quarantine_file") in found
    assert ("2972401", "soft_delete_email") in found


def test_submit_strict_submits_nothing(tmp_path: Path, files: tuple[str, str]) -> None:
    evidence = tmp_path / "alert.json"
    evidence.write_text(json.dumps(UNKNOWN_TYPE))
    db = str(tmp_path / "q.db")
    refused = cli("submit", str(evidence), "--policy", files[0], "--db", db, "--strict",
                  "--actor", "ana")
    assert refused.exit_code == 1
    assert "--strict: reading the evidence gave 1 warning(s); nothing submitted" in (
        refused.stderr)
    assert not Path(db).exists()  # the store was not even opened
    accepted = cli("submit", str(evidence), "--policy", files[0], "--db", db, "--actor", "ana")
    assert accepted.exit_code == 0 and "isolate_device" in accepted.stdout


def test_no_evidence_lines_are_reported_alike_with_jobs_1_and_2(
        tmp_path: Path, files: tuple[str, str]) -> None:
    legacy = json.loads(LEGACY.read_text())["value"][0]
    feed = tmp_path / "feed.ndjson"
    feed.write_text(json.dumps(UNKNOWN_TYPE) + "\n" + json.dumps(legacy) + "\n")
    results = [run(str(feed), "--policy", files[0], "--format", "ndjson", "--jobs", jobs,
                   "--strict") for jobs in ("1", "2")]
    assert [r.exit_code for r in results] == [1, 1]
    assert results[0].stdout == results[1].stdout
    assert results[0].stderr == results[1].stderr
    assert f"{feed}:2:1: warning: no-evidence: no evidence read from this line" in (
        results[0].stderr)
