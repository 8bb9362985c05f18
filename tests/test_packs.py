"""The shipped policy packs: they validate cleanly, and their own suites cover every rule."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from airgate.checks.runner import default_engines, load_suites
from airgate.checks.validate import validate_paths
from airgate.cli import main
from airgate.policy.loader import load_policy_set

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
PACKS = sorted(POLICIES.glob("*.yaml"))
SUITES = sorted((POLICIES / "tests").glob("*.yaml"))


def test_the_three_packs_ship() -> None:
    assert [p.name for p in PACKS] == ["email.yaml", "endpoint.yaml", "identity.yaml"]


@pytest.mark.parametrize("path", [*PACKS, POLICIES], ids=lambda p: p.name)
def test_pack_validates_without_errors_or_warnings(path: Path) -> None:
    assert validate_paths([path], strict=True) == []


@pytest.mark.parametrize(
    ("files", "first_line"),
    [
        (PACKS, "# yaml-language-server: $schema=../schemas/policy.schema.json"),
        (SUITES, "# yaml-language-server: $schema=../../schemas/policy-test.schema.json"),
    ],
    ids=["packs", "suites"],
)
def test_files_name_their_schema_for_editors(files: list[Path], first_line: str) -> None:
    assert files
    for file in files:
        assert file.read_text(encoding="utf-8").splitlines()[0] == first_line, file.name


def test_a_directory_of_packs_skips_the_test_suites() -> None:
    policy_set = load_policy_set(POLICIES)
    assert sorted(p.name for p in policy_set.policies) == [
        "email-and-collaboration", "endpoint", "identity",
    ]


def test_endpoint_pack_sets_every_automation_level() -> None:
    automation = load_policy_set(POLICIES / "endpoint.yaml").automation
    assert automation is not None
    assert automation.default_level == "full"
    assert sorted(automation.groups.values()) == ["none", "semi-all", "semi-core", "semi-non-temp"]


def test_email_rules_always_require_search_and_purge() -> None:
    for rule in load_policy_set(POLICIES / "email.yaml").rules:
        assert rule.approval is not None and rule.approval.required, rule.id
        assert rule.approval.roles == ("search-and-purge",), rule.id
        assert rule.verdicts == {"malicious", "suspicious"}, rule.id


def test_the_graph_sample_is_under_test() -> None:
    cases = [c for s in load_suites([POLICIES / "tests"]) for c in s.cases]
    files = {Path(c.evidence_file).resolve() for c in cases if c.evidence_file}
    assert ROOT / "examples" / "graph-alert.json" in files


@pytest.mark.parametrize("engine", default_engines())
def test_pack_suites_pass_with_full_coverage(engine: str) -> None:
    result = CliRunner().invoke(
        main, ["test", str(POLICIES / "tests"), "--engine", engine, "--min-coverage", "100"]
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout
    assert re.search(r"^rule coverage: (\d+)/\1 \(100\.0%\)$", result.stdout, re.MULTILINE)
    assert result.stderr == ""


# ---------------------------------------------------------------- real-tenant cases (issue 13)
ENDPOINT_ALERT = ROOT / "tests" / "data" / "evidence" / "graph-endpoint-alert.json"


def evaluate_json(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["evaluate", *args, "--policy", str(POLICIES),
                                       "--format", "json"])
    assert result.exit_code == 0, result.stdout + result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_an_endpoint_alert_gets_device_actions_only() -> None:
    # powershell.exe in System32, the local account WS-17\adminlocal, a URL and an IP
    # that Defender for Endpoint saw: the device is scanned and the process killed;
    # the OS binary is not quarantined, the local account gets no Entra ID action,
    # and the URL no email action.
    decisions = evaluate_json(str(ENDPOINT_ALERT))["decisions"]
    acting = sorted((d["entity"]["type"], d["action"]) for d in decisions if not d["excluded"])
    assert acting == [
        ("device", "collect_investigation_package"), ("device", "run_antivirus_scan"),
        ("process", "kill_process"),
    ]
    [suppressed] = [d for d in decisions if d["excluded"]]
    assert (suppressed["action"], suppressed["suppressed_by"]) == (
        "stop_and_quarantine_file", ["endpoint.never-quarantine-os-binaries"])


def test_explain_lists_no_email_rule_as_nearest_for_an_ip() -> None:
    unmatched = evaluate_json(str(ENDPOINT_ALERT), "--explain")["no_decision"]
    nearest = {u["entity"]["type"]: [t["rule"] for t in u["nearest"]] for u in unmatched}
    assert nearest["ip"] == []
    assert nearest["url"] == ["email.block-url"]
    assert all(rule.startswith("identity.") for rule in nearest["user"])


@pytest.mark.parametrize(("path", "quarantined"), [
    ("C:\\Windows\\System32", False),
    ("c:\\windows\\syswow64\\", False),
    ("\\\\?\\C:\\Windows\\WinSxS\\amd64_microsoft-windows-x", False),
    ("\\Device\\HarddiskVolume3\\Windows\\System32\\drivers", False),
    ("%SystemRoot%\\System32", False),
    ("/usr/bin", False),
    ("/sbin", False),
    ("/System/Library/CoreServices", False),
    ("C:\\Windows\\Temp", True),
    ("C:\\Users\\ann\\System32", True),
    ("C:\\Windows\\System32evil", True),
    ("/usr/local/bin", True),
    ("/home/ann/bin", True),
])
def test_os_folders_are_never_quarantined(tmp_path: Path, path: str, quarantined: bool) -> None:
    evidence = tmp_path / "file.json"
    evidence.write_text(json.dumps({
        "apiVersion": "airgate/v1", "kind": "Investigation", "id": "inv-os",
        "evidence": [{"type": "file", "verdict": "malicious", "fields": {
            "mdeDeviceId": "d1", "fileDetails": {"fileName": "x.exe", "filePath": path,
                                                 "sha256": "ab"}}}]}))
    [decision] = evaluate_json(str(evidence))["decisions"]
    assert decision["action"] == "quarantine_file"
    assert decision["excluded"] is not quarantined
