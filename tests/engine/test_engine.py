"""Engine semantics: indexing, merging, approval strength, exclusions, automation levels."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from airgate.engine import compile, decision_to_dict
from airgate.engine.decide import automation_requires, file_path, normalize_path
from airgate.errors import UsageError
from airgate.model import (
    AUTO,
    Approval,
    Automation,
    Condition,
    Evidence,
    Policy,
    PolicySet,
    Rule,
)

TODAY = dt.date(2026, 1, 15)


def action(rule_id: str, act: str, *, verdicts: tuple[str, ...] = ("malicious",),
           types: tuple[str, ...] = (), where: Any = None, approval: Approval = AUTO,
           **kw: Any) -> Rule:
    return Rule(rule_id, "p", "action", frozenset(verdicts), frozenset(types), where,
                action=act, approval=approval, **kw)


def exclude(rule_id: str, *, actions: tuple[str, ...] = (), where: Any = None,
            expires: dt.date | None = None, verdicts: tuple[str, ...] = (),
            types: tuple[str, ...] = ()) -> Rule:
    return Rule(rule_id, "p", "exclude", frozenset(verdicts), frozenset(types), where,
                reason="because", excluded_actions=frozenset(actions), expires=expires)


def pset(*rules: Rule, automation: Automation | None = None) -> PolicySet:
    return PolicySet((Policy("p", "", tuple(rules), "p.yaml"),), automation=automation)


def ev(etype: str = "file", verdict: str = "malicious", key: str = "k1", inv: str = "i1",
       group: str | None = None, **fields: Any) -> Evidence:
    return Evidence(inv, etype, verdict, key, f"name-{key}", fields, device_group=group)


def run(policy: PolicySet, *items: Evidence) -> list[Any]:
    return compile(policy, today=TODAY).evaluate(items)


def test_every_matching_rule_contributes_and_index_filters() -> None:
    policy = pset(
        action("a", "quarantine_file", types=("file",)),
        action("b", "quarantine_file", verdicts=(), types=()),
        action("c", "quarantine_file", verdicts=("suspicious",)),
        action("d", "kill_process", types=("process",)),
        action("e", "stop_and_quarantine_file", where=Condition("size", "gt", 10)),
    )
    [decision] = run(policy, ev(size=5))
    assert decision.action == "quarantine_file"
    assert decision.rules == ("a", "b")
    assert [d.action for d in run(policy, ev(size=50))] == [
        "quarantine_file", "stop_and_quarantine_file"]


def test_no_match_no_decision() -> None:
    assert run(pset(action("a", "quarantine_file", types=("file",))), ev("device")) == []


def test_rule_whose_types_its_action_cannot_target_matches_nothing() -> None:
    # Built in code, past the loader's action-target check.
    policy = pset(action("a", "quarantine_file", types=("user",)))
    assert run(policy, ev("user"), ev("file")) == []


REQ = Approval(required=True)


@pytest.mark.parametrize(
    ("approvals", "expected"),
    [
        ([AUTO, AUTO], dict(required=False, roles=("active-remediation",), quorum=1)),
        ([AUTO, REQ], dict(required=True, roles=("active-remediation",))),
        ([Approval(quorum=2), Approval(quorum=3)], dict(required=True, quorum=3)),
        # auto rules have no say in the details of a required approval
        ([Approval(quorum=1, expires_after=100), Approval(required=False, quorum=5,
                                                          expires_after=10)],
         dict(required=True, quorum=1, expires_after=100)),
        ([Approval(expires_after=100, dedup_window=5), Approval(expires_after=50,
                                                                dedup_window=9)],
         dict(expires_after=50, dedup_window=9)),
        ([Approval(require_comment=True), REQ], dict(require_comment=True)),
        ([Approval(roles=("a", "b")), Approval(roles=("b", "c"))], dict(roles=("b",))),
        ([Approval(roles=("a",)), Approval(roles=("c",))], dict(roles=("global-admin",))),
        # an empty role list means the catalog's approver role
        ([Approval(roles=("active-remediation", "x")), REQ],
         dict(roles=("active-remediation",))),
    ],
)
def test_approval_strength_table(approvals: list[Approval], expected: dict[str, Any]) -> None:
    rules = [action(f"r{i}", "quarantine_file", approval=a) for i, a in enumerate(approvals)]
    [decision] = run(pset(*rules), ev())
    for key, value in expected.items():
        assert getattr(decision.approval, key) == value, key
    assert decision.rules == tuple(f"r{i}" for i in range(len(approvals)))
    if decision.approval.roles == ("global-admin",):
        assert any("global-admin" in r for r in decision.reasons)


def test_revert_and_rate_take_the_smallest_given() -> None:
    policy = pset(action("a", "quarantine_file", revert_after=600, max_automatic_per_hour=5),
                  action("b", "quarantine_file", revert_after=60),
                  action("c", "quarantine_file"))
    [decision] = run(policy, ev())
    assert (decision.revert_after, decision.max_automatic_per_hour) == (60, 5)


def test_same_key_merges_within_investigation_only() -> None:
    policy = pset(action("a", "quarantine_file", verdicts=("malicious", "suspicious")))
    decisions = run(policy, ev(verdict="suspicious"), ev(), ev(inv="i2"), ev(key="k2"))
    assert [(d.investigation, d.entity.key) for d in decisions] == [
        ("i1", "k1"), ("i2", "k1"), ("i1", "k2")]
    assert decision_to_dict(decisions[0])["verdict"] == "malicious"


def test_deterministic_order_first_appearance_then_action() -> None:
    policy = pset(action("z", "stop_and_quarantine_file", verdicts=()),
                  action("a", "quarantine_file", verdicts=()),
                  action("p", "kill_process", verdicts=()))
    items = [ev(key="k2"), ev("process", key="p1"), ev(key="k1")]
    decisions = run(policy, *items)
    assert [(d.entity.key, d.action) for d in decisions] == [
        ("k2", "quarantine_file"), ("k2", "stop_and_quarantine_file"),
        ("p1", "kill_process"), ("p1", "stop_and_quarantine_file"),
        ("k1", "quarantine_file"), ("k1", "stop_and_quarantine_file")]
    assert run(policy, *items) == decisions


@pytest.mark.parametrize(
    ("excl", "expected"),
    [
        (exclude("x"), ("x",)),
        (exclude("x", actions=("quarantine_file",)), ("x",)),
        (exclude("x", actions=("kill_process",)), ()),
        (exclude("x", where=Condition("path", "glob", "c:\\safe\\*")), ("x",)),
        (exclude("x", where=Condition("path", "glob", "d:\\*")), ()),
        (exclude("x", expires=TODAY), ("x",)),
        (exclude("x", expires=TODAY - dt.timedelta(days=1)), ()),
        (exclude("x", verdicts=("suspicious",)), ()),
        (exclude("x", types=("device",)), ()),
    ],
)
def test_exclusions(excl: Rule, expected: tuple[str, ...]) -> None:
    [decision] = run(pset(action("a", "quarantine_file"), excl), ev(path="C:/Safe/x.exe"))
    assert decision.suppressed_by == expected
    assert decision_to_dict(decision)["excluded"] is bool(expected)


def test_several_exclusions_sorted() -> None:
    policy = pset(action("a", "quarantine_file"), exclude("zz"), exclude("aa"))
    [decision] = run(policy, ev())
    assert decision.suppressed_by == ("aa", "zz")


WIN = {"fileDetails": {"filePath": "C:\\Windows\\System32", "fileName": "evil.dll"}}
TEMP = {"fileDetails": {"filePath": "C:\\Users\\bob\\AppData\\Local\\Temp",
                        "fileName": "x.exe"}}
OTHER = {"fileDetails": {"filePath": "D:\\Tools", "fileName": "x.exe"}}


@pytest.mark.parametrize(
    ("level", "verdict", "fields", "required"),
    [
        ("full", "malicious", OTHER, False),
        ("full", "suspicious", OTHER, True),
        ("semi-all", "malicious", TEMP, True),
        ("semi-core", "malicious", WIN, True),
        ("semi-core", "malicious", OTHER, False),
        ("semi-core", "malicious", TEMP, False),
        ("semi-core", "malicious", {}, True),
        ("semi-core", "suspicious", OTHER, True),
        ("semi-non-temp", "malicious", TEMP, False),
        ("semi-non-temp", "malicious", OTHER, True),
        ("semi-non-temp", "malicious", WIN, True),
        ("semi-non-temp", "malicious", {}, True),
        ("semi-non-temp", "suspicious", TEMP, True),
    ],
)
def test_automation_levels(level: str, verdict: str, fields: dict[str, Any],
                           required: bool) -> None:
    policy = pset(action("a", "quarantine_file", verdicts=(), approval=Approval(
        required=False, quorum=2)), automation=Automation("full", {"G": level}))
    [decision] = run(policy, ev(verdict=verdict, group="G", **fields))
    assert decision.approval.required is required
    assert decision.approval.quorum == 2  # the rule's details stay
    if required:
        assert decision.reasons == (
            f"device group 'G' has automation level {level}: approval required",)
    else:
        assert decision.reasons == ()


def test_automation_none_suppresses_and_default_group_applies() -> None:
    policy = pset(action("a", "isolate_device", verdicts=()),
                  automation=Automation("none", {"Lab": "full"}))
    [decision] = run(policy, ev("device"))
    assert decision.suppressed_by == ("automation:none",)
    assert "(default) has automation level none" in decision.reasons[0]
    [lab] = run(policy, ev("device", group="Lab"))
    assert not lab.excluded and not lab.approval.required


def test_automation_ignores_non_device_actions_and_entities() -> None:
    policy = pset(action("a", "disable_user"), automation=Automation("semi-all"))
    [decision] = run(policy, ev("user"))
    assert decision.approval.required is False


def test_automation_never_weakens() -> None:
    policy = pset(action("a", "quarantine_file", approval=REQ), automation=Automation("full"))
    [decision] = run(policy, ev())
    assert decision.approval.required and decision.reasons == ()


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (WIN, "C:\\Windows\\System32\\evil.dll"),
        ({"fileDetails": {"filePath": "C:\\x\\a.exe", "fileName": "A.EXE"}}, "C:\\x\\a.exe"),
        ({"imageFile": {"filePath": "/var/x/", "fileName": "run"}}, "/var/x\\run"),
        ({"path": "C:\\temp\\a"}, "C:\\temp\\a"),
        ({"fileDetails": {"fileName": "a"}}, None),
        ({}, None),
    ],
)
def test_file_path(fields: dict[str, Any], expected: str | None) -> None:
    assert file_path(fields) == expected


@pytest.mark.parametrize(
    ("path", "core", "temp"),
    [
        ("C:\\Windows\\notepad.exe", True, False),
        ("c:/windows/temp/x", True, True),
        ("C:\\Program Files (x86)\\App\\a.exe", True, False),
        ("\\Users\\eve\\Downloads\\a.exe", False, True),
        ("C:\\Users\\eve\\Documents\\a.exe", False, False),
        ("C:\\Documents and Settings\\eve\\Local Settings\\Temp\\a", False, True),
        ("C:\\Temp\\a", False, True),
        ("C:\\Windowsx\\a", False, False),
        ("C:\\Users\\a\\b\\AppData\\Local\\Temp\\x", False, False),
    ],
)
def test_folder_classes(path: str, core: bool, temp: bool) -> None:
    fields = {"path": path}
    assert normalize_path(path).startswith("\\")
    assert automation_requires("semi-core", "malicious", fields) is core
    assert automation_requires("semi-non-temp", "malicious", fields) is (not temp)


def test_iter_decisions_streams_per_investigation() -> None:
    engine = compile(pset(action("a", "quarantine_file", verdicts=())), today=TODAY)
    items = [ev(inv="i1"), ev(inv="i1", key="k2"), ev("user", inv="i2"), ev(inv="i3")]
    batches = list(engine.iter_batches(items))
    assert [[d.investigation for d in b.decisions] for b in batches] == [["i1", "i1"], [], ["i3"]]
    assert [e.entity_type for e in batches[1].unmatched] == ["user"]
    assert list(engine.iter_decisions(items)) == engine.evaluate(items)


def test_decision_dict_shape() -> None:
    [decision] = run(pset(action("a", "quarantine_file", approval=Approval(quorum=2))), ev())
    assert decision_to_dict(decision) == {
        "investigation": "i1",
        "entity": {"type": "file", "key": "k1", "name": "name-k1"},
        "action": "quarantine_file",
        "action_display_name": "Quarantine file",
        "category": "device",
        "approval": {"mode": "required", "roles": ["active-remediation"], "quorum": 2,
                     "expires_after": 604800, "require_comment": False, "dedup_window": 3600},
        "rules": ["a"],
        "excluded": False,
        "suppressed_by": [],
        "reasons": [],
        "revert_after": None,
        "max_automatic_per_hour": None,
        "verdict": "malicious",
    }


def test_unknown_engine_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown engine 'fast'"):
        compile(pset(), engine="fast")


@pytest.mark.parametrize("enabled", [True, False])
def test_evaluate_restores_the_collector_state(enabled: bool) -> None:
    import gc

    policy = pset(action("a", "quarantine_file", types=("file",)))
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        assert len(run(policy, ev())) == 1
        assert gc.isenabled() is enabled

        def broken() -> Any:
            yield ev()
            raise RuntimeError("evidence source failed")

        with pytest.raises(RuntimeError, match="evidence source failed"):
            compile(policy, today=TODAY).evaluate(broken())
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()
