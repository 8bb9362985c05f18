"""Impact diff: decisions added, removed and changed between two policy versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result

import helpers
from airgate.checks.diff import FieldChange, diff_decisions
from airgate.model import Decision
from helpers import cli, policy_doc

BASE = policy_doc("""\
    - id: scan
      match: {verdict: malicious, entity: device}
      action: run_antivirus_scan
      approval: auto
    - id: isolate
      match: {verdict: malicious, entity: device}
      action: isolate_device
      approval: required
    - id: quarantine
      match: {verdict: malicious, entity: file}
      action: quarantine_file
      approval: auto
""", name="p")

EVIDENCE = """\
apiVersion: airgate/v1
kind: Investigation
id: inv-1
evidence:
  - type: device
    verdict: malicious
    fields: {mdeDeviceId: d1, deviceDnsName: "ws-1\\u001b[31m"}
  - type: file
    verdict: malicious
    fields: {mdeDeviceId: d1, fileDetails: {fileName: a.exe, filePath: 'C:\\x', sha256: ab}}
"""


def decide(policy: str) -> list[Decision]:
    return helpers.decide(policy, EVIDENCE)


def summary(changes: list) -> list[tuple[str, str, tuple[str, ...]]]:  # type: ignore[type-arg]
    return [(c.kind, c.decision.action, tuple(f.field for f in c.fields)) for c in changes]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("", "", []),
        # a rule removed: its decision is removed
        ("action: isolate_device", "action: contain_device",
         [("added", "contain_device", ()), ("removed", "isolate_device", ())]),
        # approval mode
        ("      action: quarantine_file\n      approval: auto",
         "      action: quarantine_file\n      approval: required",
         [("changed", "quarantine_file", ("approval",))]),
        # roles and quorum
        ("      action: isolate_device\n      approval: required",
         "      action: isolate_device\n      approval: {roles: [security-admin], quorum: 2}",
         [("changed", "isolate_device", ("roles", "quorum"))]),
    ],
    ids=["same", "add-remove", "approval", "roles-quorum"],
)
def test_diff_decisions(
    old: str, new: str, expected: list[tuple[str, str, tuple[str, ...]]]
) -> None:
    before = decide(BASE)
    after = decide(BASE.replace(old, new) if old else BASE)
    assert summary(diff_decisions(before, after)) == expected


def test_an_exclusion_changes_excluded_and_suppressed_by() -> None:
    exclusion = """\
    - id: no-isolate
      match: {entity: device}
      effect: exclude
      actions: [isolate_device]
      reason: pilot
"""
    changes = diff_decisions(decide(BASE), decide(BASE + exclusion))
    assert [c.kind for c in changes] == ["changed"]
    assert changes[0].fields == (
        FieldChange("excluded", False, True),
        FieldChange("suppressed_by", [], ["no-isolate"]),
    )


def test_a_second_rule_changes_the_rules_behind_a_decision() -> None:
    extra = """\
    - id: scan-again
      match: {verdict: malicious, entity: device}
      action: run_antivirus_scan
      approval: auto
"""
    changes = diff_decisions(decide(BASE), decide(BASE + extra))
    assert summary(changes) == [("changed", "run_antivirus_scan", ("rules",))]
    assert changes[0].fields[0] == FieldChange("rules", ["scan"], ["scan", "scan-again"])


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    base = tmp_path / "base.yaml"
    head = tmp_path / "head.yaml"
    evidence = tmp_path / "ev.yaml"
    base.write_text(BASE, encoding="utf-8")
    head.write_text(
        BASE.replace("action: isolate_device\n      approval: required",
                     "action: isolate_device\n      approval: {quorum: 2}")
        .replace("action: run_antivirus_scan", "action: collect_investigation_package"),
        encoding="utf-8",
    )
    evidence.write_text(EVIDENCE, encoding="utf-8")
    return {"base": str(base), "head": str(head), "evidence": str(evidence)}


def diff(files: dict[str, str], *extra: str) -> Result:
    return cli("diff", "--base", files["base"], "--head", files["head"], files["evidence"], *extra)


def test_table_lists_changes_and_escapes_evidence(files: dict[str, str]) -> None:
    result = diff(files)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["CHANGE", "INVESTIGATION", "ENTITY", "ACTION", "BEFORE", "AFTER"]
    assert lines[1].split() == ["added", "inv-1", "device", "ws-1\\e[31m",
                                "collect_investigation_package", "-", "auto",
                                "(active-remediation)"]
    assert lines[2].split() == ["changed", "inv-1", "device", "ws-1\\e[31m", "isolate_device",
                                "quorum=1", "quorum=2"]
    assert lines[3].split()[:5] == ["removed", "inv-1", "device", "ws-1\\e[31m",
                                    "run_antivirus_scan"]
    assert lines[4] == "1 added, 1 removed, 1 changed, 1 unchanged"
    assert "\x1b" not in result.stdout


def test_json_shape(files: dict[str, str]) -> None:
    result = diff(files, "--format", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["summary"] == {"added": 1, "removed": 1, "changed": 1, "unchanged": 1}
    kinds = [(c["change"], c["action"]) for c in doc["changes"]]
    assert kinds == [("added", "collect_investigation_package"), ("changed", "isolate_device"),
                     ("removed", "run_antivirus_scan")]
    added, changed, removed = doc["changes"]
    assert set(changed) == {"change", "investigation", "entity", "action", "fields", "before",
                            "after"}
    assert changed["entity"] == {"type": "device", "key": "device:d1", "name": "ws-1\x1b[31m"}
    assert changed["fields"] == [{"field": "quorum", "before": 1, "after": 2}]
    assert changed["before"]["approval"]["quorum"] == 1
    assert changed["after"]["approval"]["quorum"] == 2
    assert added["before"] is None and added["after"]["action"] == added["action"]
    assert removed["after"] is None and removed["before"]["rules"] == ["scan"]


@pytest.mark.parametrize(("same", "code"), [(True, 0), (False, 1)])
def test_exit_code_flag(files: dict[str, str], same: bool, code: int) -> None:
    if same:
        files = {**files, "head": files["base"]}
    result = diff(files, "--exit-code")
    assert result.exit_code == code
    if same:
        assert result.stdout == "0 added, 0 removed, 0 changed, 3 unchanged\n"


@pytest.mark.parametrize(
    ("which", "content", "message"),
    [
        ("head", BASE.replace("run_antivirus_scan", "scan_it"),
         "head.yaml:8:15: error: unknown-action"),
        ("evidence", "{not json", "ev.yaml:"),
    ],
)
def test_bad_input_is_located(
    files: dict[str, str], which: str, content: str, message: str
) -> None:
    Path(files[which]).write_text(content, encoding="utf-8")
    result = diff(files)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_json_names_custom_actions_from_each_side_s_catalog(tmp_path: Path) -> None:
    def policy(display: str, approval: str) -> str:
        return ("apiVersion: airgate/v1\nkind: Policy\nmetadata: {name: p}\nspec:\n"
                "  actions:\n"
                f"    - {{id: open_ticket, display_name: {display}, category: identity,"
                " targets: [device]}\n"
                "  rules:\n"
                "    - id: ticket\n"
                "      match: {verdict: malicious, entity: device}\n"
                "      action: open_ticket\n"
                f"      approval: {approval}\n")

    (tmp_path / "base.yaml").write_text(policy("Old ticket", "auto"))
    (tmp_path / "head.yaml").write_text(policy("New ticket", "required"))
    (tmp_path / "ev.yaml").write_text(EVIDENCE)
    result = cli("diff", "--base", str(tmp_path / "base.yaml"), "--head",
                 str(tmp_path / "head.yaml"), str(tmp_path / "ev.yaml"), "--format", "json")
    assert result.exit_code == 0, result.stderr
    (change,) = json.loads(result.stdout)["changes"]
    assert change["before"]["action_display_name"] == "Old ticket"
    assert change["after"]["action_display_name"] == "New ticket"
    assert change["before"]["category"] == change["after"]["category"] == "identity"
