"""The durable-rules engine: identical decisions to the indexed engine, no state left behind."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import pytest

import airgate
import airgate.engine
from airgate.engine.core import compile as compile_engine
from airgate.errors import UsageError
from airgate.model import (
    VERDICTS,
    AllOf,
    AnyOf,
    Approval,
    Automation,
    Condition,
    Evidence,
    NotOf,
    Policy,
    PolicySet,
    Rule,
)
from airgate.policy.loader import load_policy_text
from helpers import ROOT

POLICY = """
apiVersion: airgate/v1
kind: Policy
metadata: {name: t}
spec:
  rules:
    - id: iso
      match: {verdict: malicious, entity: device, where: {field: riskScore, eq: high}}
      action: isolate_device
      approval: auto
    - id: scan
      match: {verdict: [malicious, suspicious], entity: device}
      action: run_antivirus_scan
      approval: required
    - id: scan-big
      match: {entity: device, where: {field: score, gt: 50}}
      action: run_antivirus_scan
      approval: auto
    - id: no-dc
      effect: exclude
      reason: never isolate a domain controller
      actions: [isolate_device]
      match: {entity: device, where: {field: deviceDnsName, glob: "dc*"}}
"""


def _device(key: str, verdict: str = "malicious", **fields: Any) -> Evidence:
    return Evidence("inv-1", "device", verdict, key, key, fields)


def _both(policy_set: PolicySet, evidence: list[Evidence]) -> tuple[list[Any], list[Any]]:
    durable = compile_engine(policy_set, engine="durable", today=None)
    indexed = compile_engine(policy_set, engine="indexed", today=None)
    return indexed.evaluate(evidence), durable.evaluate(evidence)


def test_fires_every_matching_rule_and_exclusion() -> None:
    pytest.importorskip("durable.lang")
    ps = load_policy_text(POLICY)
    items = [_device("d1", riskScore="High", score=70, deviceDnsName="dc01"),
             _device("d2", "suspicious", score="12"),
             _device("d3", "noThreatsFound", score=51.5)]
    indexed, durable = _both(ps, items)
    assert durable == indexed
    got = [(d.entity.key, d.action, d.rules, d.suppressed_by) for d in durable]
    assert got == [
        ("d1", "isolate_device", ("iso",), ("no-dc",)),
        ("d1", "run_antivirus_scan", ("scan", "scan-big"), ()),
        ("d2", "run_antivirus_scan", ("scan",), ()),
        ("d3", "run_antivirus_scan", ("scan-big",), ()),
    ]


def test_evaluating_twice_gives_the_same_decisions_and_keeps_no_state() -> None:
    pytest.importorskip("durable.lang")
    import durable_rules_engine as dre

    engine = compile_engine(load_policy_text(POLICY), engine="durable")
    items = [_device(f"d{i}", random.Random(i).choice(VERDICTS), score=i % 100,
                     riskScore="high", deviceDnsName=f"dc{i}" if i % 3 else "srv")
             for i in range(300)]
    first = engine.evaluate(items)
    assert engine.evaluate(items) == first
    # Every session was deleted: durable no longer knows them (error 309: no such state).
    handle = engine.matcher._handle  # type: ignore[attr-defined]
    for sid in ("s0", "s1", "s299", "s599"):
        with pytest.raises(dre.error, match="309"):
            dre.get_facts(handle, sid)


def test_memory_does_not_grow_with_evaluations() -> None:
    pytest.importorskip("durable.lang")
    statm = Path("/proc/self/statm")
    if not statm.exists():
        pytest.skip("needs /proc to read the resident set size")
    engine = compile_engine(load_policy_text(POLICY), engine="durable")
    items = [_device(f"d{i}", riskScore="high", score=i) for i in range(2000)]
    for _ in range(3):
        engine.evaluate(items)  # warm up allocator pools

    def resident_kib() -> int:
        return int(statm.read_text().split()[1]) * 4

    before = resident_kib()
    for _ in range(10):
        engine.evaluate(items)
    # 20,000 sessions with a ~400-byte fact each would leak 8 MB or more if they stayed.
    assert resident_kib() - before < 4096


def test_each_compile_gets_its_own_ruleset() -> None:
    pytest.importorskip("durable.lang")
    ps = load_policy_text(POLICY)
    a = compile_engine(ps, engine="durable")
    b = compile_engine(ps, engine="durable")
    assert a.matcher.ruleset_name != b.matcher.ruleset_name  # type: ignore[attr-defined]
    items = [_device("d1", riskScore="high")]
    assert a.evaluate(items) == b.evaluate(items)


def test_field_names_never_reach_durable() -> None:
    """'luljmsf' hashes like 'verdict' in durable-rules; evidence keys are never posted."""
    pytest.importorskip("durable.lang")
    from airgate.engine.durable import fnv1a_32

    assert fnv1a_32("verdict") == fnv1a_32("luljmsf")
    ps = load_policy_text(POLICY.replace("riskScore", "verdict"))
    engine = compile_engine(ps, engine="durable")
    fact = engine.matcher.message("malicious", "device", {"luljmsf": "high"})  # type: ignore[attr-defined]
    assert "luljmsf" not in fact and "verdict" not in fact
    assert engine.evaluate([_device("d1", luljmsf="high")]) == compile_engine(ps).evaluate(
        [_device("d1", luljmsf="high")])


def test_missing_durable_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "durable_rules_engine", None)
    monkeypatch.delitem(sys.modules, "airgate.engine.durable", raising=False)
    monkeypatch.delattr(airgate.engine, "durable", raising=False)
    with pytest.raises(UsageError, match=r"pip install 'airgate\[durable\]'") as info:
        compile_engine(load_policy_text(POLICY), engine="durable")
    assert info.value.exit_code == 2


# ---------------------------------------------------------------- every shipped suite
def test_every_policy_test_suite_gives_identical_decisions_on_both_engines() -> None:
    pytest.importorskip("durable.lang")
    from airgate.checks.runner import run_suites
    from airgate.checks.suites import discover_suites, load_suites

    suites = load_suites(discover_suites([ROOT / "policies" / "tests"]))
    assert suites, "no policy test suites found under policies/tests"
    result = run_suites(suites, engines=("indexed", "durable"))
    assert result.engines == ("indexed", "durable")
    disagreements = [p for r in result.results for p in r.problems if "disagree" in p]
    assert disagreements == []
    assert len(result.results) > 0


# ---------------------------------------------------------------- randomized equivalence
_FIELDS = ("a", "b", "n.x", "n.y", "lst", "deep.l.v")
_STRINGS = ("Alpha", "alpha", "beta", "C:\\Windows\\Temp\\x.exe", "10.0.0.7", "192.168.1.9",
            "12", "3.5", "", "gamma delta")
_PATTERNS = {"glob": ("*temp*", "c:/windows/*", "al?ha", "[ab]*"),
             "regex": ("^a", "ta$", r"\d+"),
             "cidr": ("10.0.0.0/8", ["192.168.0.0/16", "172.16.0.0/12"])}


def _scalar(rng: random.Random) -> Any:
    kind = rng.randrange(7)
    if kind == 0:
        return rng.choice(_STRINGS)
    if kind == 1:
        return rng.choice((0, 1, 5, 12, -3, 2**60, 10**20))
    if kind == 2:
        return rng.choice((0.5, 3.5, 12.0, 1e300, -0.0, 1e-7))
    if kind == 3:
        return rng.choice((True, False))
    if kind == 4:
        return None
    if kind == 5:
        return [rng.choice(_STRINGS + (5, 12, True)) for _ in range(rng.randrange(3))]
    return rng.choice(("ALPHA", "Beta", "5", "1e3"))


def _fields(rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("a", "b", "lst"):
        if rng.random() < 0.8:
            out[name] = _scalar(rng)
    if rng.random() < 0.8:
        out["n"] = {"x": _scalar(rng), "y": _scalar(rng)}
    if rng.random() < 0.5:
        out["deep"] = {"l": [{"v": _scalar(rng)} for _ in range(rng.randrange(3))]}
    return out


def _condition(rng: random.Random) -> Condition:
    op = rng.choice(("eq", "ne", "in", "not_in", "exists", "gt", "gte", "lt", "lte",
                     "glob", "regex", "contains", "cidr"))
    value: Any
    if op in ("eq", "ne", "contains"):
        value = rng.choice(_STRINGS + (5, 12, 3.5, True, False, None))
    elif op in ("in", "not_in"):
        value = [rng.choice(_STRINGS + (5, 12, True)) for _ in range(rng.randint(1, 3))]
    elif op == "exists":
        value = rng.random() < 0.7
    elif op in ("gt", "gte", "lt", "lte"):
        value = rng.choice((0, 4, 5, 12, 3.5, -1, 10**18))
    else:
        value = rng.choice(_PATTERNS[op])
    return Condition(rng.choice(_FIELDS), op, value)


def _node(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.random()
    if depth >= 3 or pick < 0.45:
        return _condition(rng)
    if pick < 0.7:
        return AllOf(tuple(_node(rng, depth + 1) for _ in range(rng.randint(1, 3))))
    if pick < 0.9:
        return AnyOf(tuple(_node(rng, depth + 1) for _ in range(rng.randint(1, 3))))
    return NotOf(_node(rng, depth + 1))


_TYPES = ("device", "file", "user", "mailbox")
_ACTIONS = {"device": "isolate_device", "file": "quarantine_file", "user": "disable_user",
            "mailbox": "turn_off_external_forwarding"}


def _random_policy(rng: random.Random) -> PolicySet:
    rules = []
    for i in range(rng.randint(3, 12)):
        etypes = frozenset(rng.sample(_TYPES, rng.randint(1, 2))) if rng.random() < 0.8 \
            else frozenset()
        verdicts = frozenset(rng.sample(VERDICTS[:4], rng.randint(1, 2))) \
            if rng.random() < 0.7 else frozenset()
        where = _node(rng) if rng.random() < 0.9 else None
        if rng.random() < 0.25:
            rules.append(Rule(f"x{i}", "p", "exclude", verdicts, etypes, where, reason="r",
                              excluded_actions=frozenset(
                                  rng.sample(sorted(_ACTIONS.values()), 1))
                              if rng.random() < 0.5 else frozenset()))
        else:
            etype = sorted(etypes)[0] if etypes else rng.choice(_TYPES)
            approval = Approval(required=rng.random() < 0.5, quorum=rng.randint(1, 2))
            rules.append(Rule(f"r{i}", "p", "action", verdicts, etypes or frozenset({etype}),
                              where, action=_ACTIONS[etype], approval=approval))
    automation = Automation("semi-core", {"g1": "full", "g2": "none"}) \
        if rng.random() < 0.5 else None
    return PolicySet((Policy("p", "", tuple(rules), "p.yaml", automation),), automation=automation)


def _random_evidence(rng: random.Random, n: int) -> list[Evidence]:
    return [Evidence(f"inv{rng.randrange(3)}", rng.choice(_TYPES + ("ip",)),
                     rng.choice(VERDICTS), f"k{rng.randrange(n)}", "name", _fields(rng),
                     device_group=rng.choice((None, "g1", "g2")))
            for _ in range(n)]


@pytest.mark.parametrize("seed", range(40))
def test_random_rules_and_evidence_give_identical_decisions(seed: int) -> None:
    pytest.importorskip("durable.lang")
    rng = random.Random(seed)
    policy_set = _random_policy(rng)
    evidence = _random_evidence(rng, 60)
    indexed, durable = _both(policy_set, evidence)
    assert durable == indexed
