"""Why a decision is what it is: each condition of each rule with the value it saw.

For evidence that got no decision, the nearest rules among those whose action
can target its entity type: those whose verdict and entity type admitted the
item (their conditions failed), or else the rules that differ least from it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from airgate.engine.compiled import CompiledPolicy
from airgate.engine.conditions import ConditionTrace, trace_node
from airgate.model import Decision, Evidence, Rule
from airgate.render import escape

NEAREST_LIMIT = 3


@dataclass(frozen=True)
class RuleTrace:
    """One rule checked against one evidence item."""

    rule: Rule
    verdict_ok: bool
    entity_ok: bool
    conditions: tuple[ConditionTrace, ...]
    entity_types: frozenset[str] = frozenset()

    @property
    def matched(self) -> bool:
        return self.verdict_ok and self.entity_ok and (
            not self.conditions or self.conditions[0].held)

    @property
    def failed_conditions(self) -> tuple[ConditionTrace, ...]:
        return tuple(c for c in self.conditions if c.kind == "condition" and not c.held)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule.id,
            "effect": self.rule.effect,
            "matched": self.matched,
            "verdict": {"expected": sorted(self.rule.verdicts), "held": self.verdict_ok},
            "entity": {"expected": sorted(self.entity_types), "held": self.entity_ok},
            "conditions": [c.as_dict() for c in self.conditions],
        }


def trace_rule(rule: Rule, ev: Evidence, entity_types: frozenset[str] | None = None) -> RuleTrace:
    """Check every part of a rule against an evidence item, recording each value seen.

    ``entity_types`` overrides the rule's own list (the engine narrows it to the
    action's targets).
    """
    etypes = rule.entity_types if entity_types is None else entity_types
    return RuleTrace(
        rule,
        not rule.verdicts or ev.verdict in rule.verdicts,
        not etypes or ev.entity_type in etypes,
        tuple(trace_node(rule.where, ev.fields)) if rule.where is not None else (),
        etypes,
    )


@functools.lru_cache(maxsize=8)
def _rules_by_id(compiled: CompiledPolicy) -> dict[str, Rule]:
    return {r.id: r for r in compiled.policy_set.rules}


def explain_decision(compiled: CompiledPolicy, decision: Decision) -> dict[str, Any]:
    """The JSON explanation of a decision: its rules and the exclusions that suppressed it."""
    by_id = _rules_by_id(compiled)
    ev = decision.evidence
    out: dict[str, Any] = {"rules": [], "exclusions": []}
    if ev is None:
        return out
    for rule_id in decision.rules:
        out["rules"].append(trace_rule(by_id[rule_id], ev).as_dict())
    for rule_id in decision.suppressed_by:
        if rule_id in by_id:
            out["exclusions"].append(trace_rule(by_id[rule_id], ev).as_dict())
    return out


def nearest_rules(compiled: CompiledPolicy, ev: Evidence,
                  limit: int = NEAREST_LIMIT) -> list[RuleTrace]:
    """The action rules closest to matching an item that none matched.

    Only rules whose action can target the item's entity type: a rule whose
    action cannot (an email action for an IP address) is no nearer for having
    no conditions, and would only be noise. None such: an empty list.
    """
    traces = [trace_rule(c.rule, ev, c.entity_types) for c in compiled.rules
              if ev.entity_type in c.spec.targets]
    admitted = [t for t in traces if t.verdict_ok and t.entity_ok]
    if admitted:
        return admitted[:limit]

    # A rule for the same entity type is nearer than one for the same verdict.
    def distance(t: RuleTrace) -> int:
        return (not t.verdict_ok) + 2 * (not t.entity_ok) + len(t.failed_conditions)

    return sorted(traces, key=distance)[:limit]


def explain_unmatched(compiled: CompiledPolicy, ev: Evidence) -> dict[str, Any]:
    return {
        "investigation": ev.investigation,
        "entity": {"type": ev.entity_type, "key": ev.key, "name": ev.name},
        "verdict": ev.verdict,
        "nearest": [t.as_dict() for t in nearest_rules(compiled, ev)],
    }


# ---------------------------------------------------------------- text
def _value(value: Any) -> str:
    return escape(json.dumps(value, ensure_ascii=False, default=str))


def _trace_lines(trace: RuleTrace | dict[str, Any], indent: str) -> list[str]:
    data = trace.as_dict() if isinstance(trace, RuleTrace) else trace
    mark = "matched" if data["matched"] else "did not match"
    lines = [f"{indent}rule {escape(data['rule'])} ({data['effect']}): {mark}"]
    for part in ("verdict", "entity"):
        expected = data[part]["expected"]
        if expected:
            ok = "held" if data[part]["held"] else "FAILED"
            lines.append(f"{indent}  {part} in {_value(expected)}: {ok}")
    for cond in data["conditions"]:
        pad = indent + "  " + "  " * cond["depth"]
        ok = "held" if cond["held"] else "FAILED"
        if cond["kind"] != "condition":
            lines.append(f"{pad}{cond['kind']}: {ok}")
            continue
        lines.append(f"{pad}{escape(cond['field'])} {cond['op']} {_value(cond['value'])}:"
                     f" {ok} (value: {_value(cond['actual'])})")
    return lines


def explanation_text(explanation: dict[str, Any], indent: str = "  ") -> list[str]:
    """Lines explaining a decision (from :func:`explain_decision`)."""
    lines: list[str] = []
    for trace in explanation["rules"] + explanation["exclusions"]:
        lines.extend(_trace_lines(trace, indent))
    return lines


def unmatched_text(unmatched: dict[str, Any], indent: str = "  ") -> list[str]:
    entity = unmatched["entity"]
    lines = [f"no decision for {escape(entity['type'])} {escape(entity['name'])}"
             f" ({escape(unmatched['verdict'])}) in investigation"
             f" {escape(unmatched['investigation'])}; nearest rules:"]
    if not unmatched["nearest"]:
        lines.append(f"{indent}(no action rule of the policy set can act on entity type"
                     f" {escape(entity['type'])})")
    for trace in unmatched["nearest"]:
        lines.extend(_trace_lines(trace, indent))
    return lines
