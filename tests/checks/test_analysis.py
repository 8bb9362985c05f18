"""Static analysis: each finding where it is certainly true, none on reasonable rules."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from airgate.checks.analysis import check, unsatisfiable
from airgate.checks.validate import validate_paths
from airgate.engine.conditions import compile_node
from airgate.model import AllOf, AnyOf, Condition, NotOf
from airgate.policy.loader import load_policy_text
from helpers import ROOT, policy_doc

TODAY = dt.date(2026, 1, 15)
HEAD = policy_doc("", name="t")


def findings(rules: str) -> list[tuple[str, str]]:
    if rules.endswith("reason: r\n") or "match:" not in rules.split("- id: x")[-1]:
        rules += "      match: {}\n"
    policy = load_policy_text(HEAD + rules, file="t.yaml")
    return [(f.code, f.message) for f in check(policy, today=TODAY)]


def C(field: str, op: str, value: object) -> Condition:  # noqa: N802 - reads like the YAML
    return Condition(field, op, value)


@pytest.mark.parametrize(
    "node",
    [
        AllOf((C("a", "eq", "x"), C("a", "eq", "y"))),
        AllOf((C("a", "eq", "x"), C("a", "ne", "X"))),
        AllOf((C("a", "eq", "x"), C("a", "in", ("y", "z")))),
        AllOf((C("a", "in", ("x", "y")), C("a", "not_in", ("x", "y")))),
        AllOf((C("a", "exists", False), C("a", "glob", "*"))),
        AllOf((C("a", "exists", False), C("a", "exists", True))),
        AllOf((C("a", "exists", False), C("a", "contains", "x"))),
        AllOf((C("a", "gt", 5), C("a", "lt", 3))),
        AllOf((C("a", "gt", 5), C("a", "lte", 5))),
        AllOf((C("a", "gte", 5), C("a", "lt", 5))),
        AllOf((C("a", "eq", 4), C("a", "gt", 5))),
        AllOf((C("a", "eq", "4"), C("a", "gt", 5))),
        AllOf((C("a", "eq", True), C("a", "gt", 0))),
        AllOf((AllOf((C("a", "eq", 1),)), C("a", "eq", 2))),
        AllOf((C("b", "eq", 1), AnyOf((AllOf((C("a", "eq", 1), C("a", "eq", 2))),
                                        C("a", "in", ()))))),
        C("a", "in", ()),
        C("a", "eq", None),
    ],
)
def test_contradictions_found(node: object) -> None:
    assert unsatisfiable(node)  # type: ignore[arg-type]


SAMPLES = [
    {"a": v} for v in ("x", "y", "X", 1, 2, 4, 5, 5.5, "4", True, None, [], [1, 6], ["x", "y"],
                       [6, 2], {"b": 1})
] + [{}, {"a": [{"b": 1}, {"b": 2}]}]


@pytest.mark.parametrize(
    "node",
    [
        AllOf((C("a", "eq", "x"), C("a", "eq", "X"))),
        AllOf((C("a", "eq", "x"), C("b", "eq", "y"))),
        AllOf((C("a", "eq", 1), C("a", "eq", 1.0))),
        AllOf((C("a", "eq", "x"), C("a", "ne", "y"))),
        AllOf((C("a", "in", ("x", "y")), C("a", "not_in", ("x",)))),
        AllOf((C("a", "exists", False), C("a", "ne", "x"))),
        AllOf((C("a", "exists", False), C("a", "not_in", ("x",)))),
        AllOf((C("a", "gte", 5), C("a", "lte", 5))),
        AllOf((C("a", "gt", 5), C("a", "lt", 6))),
        AllOf((C("a", "eq", "5.5"), C("a", "gt", 5))),
        AnyOf((AllOf((C("a", "eq", 1), C("a", "eq", 2))), C("a", "eq", 3))),
        # separate branches may be satisfied by different list elements
        AllOf((AnyOf((C("a", "gt", 5),)), AnyOf((C("a", "lt", 3),)))),
        AllOf((C("a", "contains", "x"), C("a", "contains", "y"))),
        NotOf(AllOf((C("a", "eq", 1), C("a", "eq", 2)))),
        AllOf((C("a", "glob", "x*"), C("a", "regex", "^y"))),
        AllOf((C("a.b", "eq", 1), C("a", "exists", False))),
    ],
)
def test_no_false_alarms(node: object) -> None:
    assert not unsatisfiable(node)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "node",
    [
        AllOf((C("a", "eq", "x"), C("a", "eq", "y"))),
        AllOf((C("a", "gt", 5), C("a", "lt", 3))),
        AllOf((C("a", "eq", 4), C("a", "gt", 5))),
        AllOf((C("a", "in", ("x", "y")), C("a", "not_in", ("x", "y")))),
        AllOf((C("a", "exists", False), C("a", "exists", True))),
    ],
)
def test_reported_contradictions_really_never_match(node: object) -> None:
    # Soundness against the engine itself, lists and odd shapes included.
    predicate = compile_node(node)  # type: ignore[arg-type]
    assert unsatisfiable(node)  # type: ignore[arg-type]
    assert not any(predicate(sample) for sample in SAMPLES)


def test_never_matches_is_located_at_the_rule() -> None:
    policy = load_policy_text(HEAD + """\
    - id: dead
      match:
        entity: file
        where:
          - {field: fileDetails.fileSize, gt: 100}
          - {field: fileDetails.fileSize, lt: 10}
      action: quarantine_file
""", file="t.yaml")
    [finding] = check(policy, today=TODAY)
    assert (finding.code, finding.severity) == ("never-matches", "warning")
    assert finding.location.file == "t.yaml" and finding.location.line == 6
    assert "'dead' can never match" in finding.message


EXCL = """\
    - id: q
      match: {verdict: malicious, entity: file}
      action: quarantine_file
      approval: auto
    - id: x
      effect: exclude
      reason: r
"""


@pytest.mark.parametrize(
    ("extra", "shadowed"),
    [
        ("", True),
        ("      actions: [quarantine_file]\n", True),
        ("      match: {verdict: [malicious, suspicious], entity: [file, device]}\n", True),
        ("      expires: 2026-01-15\n", True),
        ("      expires: 2026-01-14\n", False),
        ("      actions: [kill_process]\n", False),
        ("      match: {verdict: suspicious}\n", False),
        ("      match: {entity: device}\n", False),
        ("      match: {where: {field: x, eq: 1}}\n", False),
    ],
)
def test_shadowed(extra: str, shadowed: bool) -> None:
    codes = [code for code, _ in findings(EXCL + extra)]
    assert ("shadowed" in codes) is shadowed


def test_shadowed_needs_every_verdict_covered() -> None:
    rules = EXCL.replace("verdict: malicious, ", "") + "      match: {verdict: malicious}\n"
    assert "shadowed" not in [code for code, _ in findings(rules)]


def test_approval_conflict_names_both_rules_and_the_winner() -> None:
    [(code, message)] = findings("""\
    - id: a
      match: {verdict: [malicious, suspicious], entity: file}
      action: quarantine_file
      approval: auto
    - id: b
      match: {verdict: suspicious}
      action: quarantine_file
      approval: {quorum: 2}
    - id: c
      match: {verdict: malicious, entity: file}
      action: quarantine_file
      approval: auto
    - id: d
      match: {verdict: noThreatsFound, entity: file}
      action: quarantine_file
      approval: required
""")
    assert code == "approval-conflict"
    assert "'a' and 'b'" in message
    assert "the approval is required: active-remediation x2" in message


@pytest.mark.parametrize(
    ("exclusion", "nothing"),
    [
        ("      actions: [isolate_device]\n", True),
        ("      actions: [quarantine_file]\n", False),
        ("      actions: [quarantine_file]\n      match: {verdict: suspicious}\n", True),
        ("      match: {entity: user}\n", True),
        ("      match: {entity: [user, file]}\n", False),
        ("", False),
    ],
)
def test_excludes_nothing(exclusion: str, nothing: bool) -> None:
    codes = [code for code, _ in findings(EXCL + exclusion + "      expires: 2030-01-01\n")]
    assert ("excludes-nothing" in codes) is nothing


def test_reasonable_rules_raise_nothing() -> None:
    assert findings("""\
    - id: files
      match: {verdict: [malicious, suspicious], entity: file}
      action: quarantine_file
      approval: auto
    - id: big-files
      match:
        verdict: malicious
        entity: file
        where:
          - {field: fileDetails.fileSize, gte: 10}
          - {field: fileDetails.fileSize, lte: 1000}
          - {field: fileDetails.fileName, glob: "*.exe"}
          - {field: fileDetails.fileName, ne: "setup.exe"}
          - any:
              - {field: fileDetails.signer, exists: false}
              - {field: fileDetails.signer, not_in: [Microsoft, Contoso]}
      action: stop_and_quarantine_file
      approval: auto
    - id: devices
      match: {verdict: malicious, entity: device}
      action: isolate_device
      approval: {roles: [active-remediation], quorum: 2}
    - id: servers-of-dc
      effect: exclude
      reason: never isolate domain controllers
      match:
        entity: device
        where: {field: deviceDnsName, glob: "dc*"}
      actions: [isolate_device]
    - id: phish
      match:
        verdict: malicious
        entity: analyzedMessage
        where:
          all:
            - {field: threats, contains: Phish}
            - {field: senderIp, cidr: [10.0.0.0/8]}
      action: soft_delete_email
""") == []


def test_validate_strict_runs_the_analysis(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(HEAD + EXCL + "      match: {}\n")
    strict = validate_paths([policy], strict=True)
    assert [f.code for f in strict] == ["shadowed"]
    assert validate_paths([policy]) == []


def test_validate_strict_judges_exclusions_on_the_day_it_is_given(tmp_path: Path) -> None:
    # Expired on the given day: validate warns so, and the analysis must agree that the
    # exclusion no longer shadows anything.
    policy = tmp_path / "p.yaml"
    policy.write_text(HEAD + EXCL + "      match: {}\n      expires: 2030-01-01\n")
    late = validate_paths([policy], strict=True, today=dt.date(2030, 1, 2))
    assert [f.code for f in late] == ["expired-exclusion"]
    early = validate_paths([policy], strict=True, today=dt.date(2029, 12, 31))
    assert [f.code for f in early] == ["shadowed"]


def test_same_roles_in_another_order_are_no_approval_conflict() -> None:
    assert findings("""\
    - id: a
      match: {verdict: malicious, entity: file}
      action: quarantine_file
      approval: {roles: [active-remediation, soc-lead]}
    - id: b
      match: {verdict: malicious, entity: file}
      action: quarantine_file
      approval: {roles: [soc-lead, active-remediation]}
""") == []


def test_shipped_packs_are_clean() -> None:
    packs = ROOT / "policies"
    files = sorted(p for p in packs.glob("*.yaml"))
    assert files
    assert [f for f in validate_paths(files, strict=True) if f.code in
            ("never-matches", "shadowed", "approval-conflict", "excludes-nothing")] == []
