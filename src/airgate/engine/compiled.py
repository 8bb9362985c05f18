"""The compiled form of a policy set, shared by every matcher (indexed and durable).

Compiling once resolves what does not depend on the evidence: each rule's
predicate, its catalog entry and approval, the live exclusions.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from typing import Any

from airgate.engine.conditions import compile_node
from airgate.engine.decide import CompiledExclusion, CompiledRule
from airgate.errors import PolicyError
from airgate.model import Approval, Automation, PolicySet, Rule


@dataclass(frozen=True, eq=False)
class CompiledPolicy:
    """Everything an engine needs, computed once: no engine-specific state."""

    policy_set: PolicySet
    rules: tuple[CompiledRule, ...]
    exclusions: tuple[CompiledExclusion, ...]  # live ones only (expired dropped)
    expired: tuple[Rule, ...]
    automation: Automation | None
    today: dt.date


def compile_policy(policy_set: PolicySet, *, today: dt.date | None = None) -> CompiledPolicy:
    """Compile every rule's predicate and resolve its catalog entry and approval."""
    today = today or dt.date.today()
    rules: list[CompiledRule] = []
    exclusions: list[CompiledExclusion] = []
    expired: list[Rule] = []
    for order, rule in enumerate(policy_set.rules):
        where = _compile_where(rule)
        if rule.effect == "exclude":
            if rule.is_expired(today):
                expired.append(rule)
                continue
            exclusions.append(CompiledExclusion(
                rule, rule.id, frozenset(rule.excluded_actions) or None, where))
            continue
        spec = policy_set.catalog.get(rule.action or "")
        if spec is None:
            raise PolicyError(f"rule {rule.id!r}: unknown action {rule.action!r}",
                              rule.location, "unknown-action")
        approval = rule.approval if rule.approval is not None else Approval()
        if not approval.roles:
            approval = replace(approval, roles=(spec.approver_role,))
        etypes = rule.entity_types & spec.targets if rule.entity_types else spec.targets
        if not etypes:
            # Listed types the action cannot target: the rule can never apply. The
            # loader rejects such rules; a policy set built in code may still hold
            # one, and an empty type set must not read as "any type" in the index.
            continue
        rules.append(CompiledRule(rule, order, rule.id, spec.id, spec, approval, where,
                                  spec.category == "device", frozenset(etypes)))
    return CompiledPolicy(policy_set, tuple(rules), tuple(exclusions), tuple(expired),
                          policy_set.automation, today)


def _compile_where(rule: Rule) -> Any:
    if rule.where is None:
        return None
    try:
        return compile_node(rule.where)
    except (ValueError, TypeError, re.error) as exc:
        raise PolicyError(f"rule {rule.id!r}: cannot compile condition: {exc}",
                          rule.location, "bad-condition") from exc
