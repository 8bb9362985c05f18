"""Static analysis of a loaded policy set (``airgate validate --strict``).

Sound by design: a finding is reported only when it is certainly true under the
engine's semantics (docs/engine.md). Whatever the analysis cannot decide, it
leaves alone, so some dead rules go unreported but no live rule is flagged.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from airgate.engine.conditions import ELEMENT_OPS, flatten_all, to_number, value_key
from airgate.engine.decide import merge_approvals
from airgate.errors import Finding
from airgate.model import AnyOf, Approval, Condition, Node, NotOf, PolicySet, Rule

CODES = {
    "never-matches": "A rule whose conditions contradict each other: it can never match.",
    "shadowed": "An action rule whose every match is suppressed by an exclusion.",
    "approval-conflict": "Two rules propose the same action on the same verdict and entity"
                         " type with different approval; the stronger one wins.",
    "excludes-nothing": "An exclusion whose scope holds no action any rule can produce.",
}

_POSITIVE = ELEMENT_OPS | {"contains"}


def check(policy_set: PolicySet, *, today: dt.date | None = None) -> list[Finding]:
    """Every static-analysis warning for a policy set, each located at its rule."""
    today = today or dt.date.today()
    scopes = _scopes(policy_set)
    findings: list[Finding] = []
    for rule in policy_set.rules:
        if rule.where is not None and unsatisfiable(rule.where):
            findings.append(_warn("never-matches", rule,
                                  f"rule {rule.id!r} can never match: its conditions"
                                  " contradict each other"))
    findings.extend(_shadowed(policy_set, scopes, today))
    findings.extend(_conflicts(policy_set, scopes))
    findings.extend(_excludes_nothing(policy_set, scopes, today))
    return findings


def _warn(code: str, rule: Rule, message: str) -> Finding:
    return Finding("warning", code, message, rule.location)


# ---------------------------------------------------------------- scopes
@dataclass(frozen=True)
class _Scope:
    """An action rule's reach: verdicts and entity types (empty: any) and approval."""

    verdicts: frozenset[str]
    types: frozenset[str]  # narrowed to the action's targets, as the engine does
    approval: Approval


def _scopes(policy_set: PolicySet) -> dict[str, _Scope]:
    out: dict[str, _Scope] = {}
    for rule in policy_set.rules:
        spec = policy_set.catalog.get(rule.action or "") if rule.effect == "action" else None
        if spec is None:
            continue
        types = rule.entity_types & spec.targets if rule.entity_types else spec.targets
        approval = rule.approval or Approval()
        # Roles are a set to the engine: [a, b] and [b, a] are the same approval.
        roles = tuple(sorted(set(approval.roles))) or (spec.approver_role,)
        approval = Approval(approval.required, roles, approval.quorum,
                            approval.expires_after, approval.require_comment,
                            approval.dedup_window)
        out[rule.id] = _Scope(rule.verdicts, frozenset(types), approval)
    return out


def _overlap(a: frozenset[str], b: frozenset[str]) -> bool:
    return not a or not b or bool(a & b)


def _covers(outer: frozenset[str], inner: frozenset[str]) -> bool:
    """Every value ``inner`` admits is admitted by ``outer`` (empty: any)."""
    return not outer or (bool(inner) and inner <= outer)


def _live_exclusions(policy_set: PolicySet, today: dt.date) -> list[Rule]:
    return [r for r in policy_set.rules if r.effect == "exclude" and not r.is_expired(today)]


def _shadowed(policy_set: PolicySet, scopes: dict[str, _Scope], today: dt.date) -> list[Finding]:
    findings = []
    blanket = [x for x in _live_exclusions(policy_set, today) if x.where is None]
    for rule in policy_set.rules:
        scope = scopes.get(rule.id)
        if scope is None:
            continue
        for excl in blanket:
            if (_covers(excl.verdicts, scope.verdicts) and _covers(excl.entity_types, scope.types)
                    and (not excl.excluded_actions or rule.action in excl.excluded_actions)):
                until = f" until {excl.expires.isoformat()}" if excl.expires else ""
                findings.append(_warn("shadowed", rule,
                                      f"rule {rule.id!r} is shadowed by exclusion {excl.id!r}"
                                      f"{until}: every action it proposes is suppressed"))
                break
    return findings


def _conflicts(policy_set: PolicySet, scopes: dict[str, _Scope]) -> list[Finding]:
    findings = []
    rules = [r for r in policy_set.rules if r.id in scopes]
    for i, later in enumerate(rules):
        for earlier in rules[:i]:
            a, b = scopes[earlier.id], scopes[later.id]
            if (earlier.action != later.action or a.approval == b.approval
                    or not _overlap(a.verdicts, b.verdicts) or not _overlap(a.types, b.types)):
                continue
            winner = merge_approvals([(a.approval, False), (b.approval, False)], [])
            findings.append(_warn(
                "approval-conflict", later,
                f"rules {earlier.id!r} and {later.id!r} both propose {later.action} on"
                f" overlapping verdicts and entity types with different approval"
                f" ({_describe(a.approval)} vs {_describe(b.approval)}); where both match,"
                f" the approval is {_describe(winner)}"))
    return findings


def _describe(approval: Approval) -> str:
    if not approval.required:
        return f"auto (roles {','.join(approval.roles)})"
    text = f"required: {','.join(approval.roles)} x{approval.quorum}"
    extras = []
    if approval.require_comment:
        extras.append("comment")
    extras.append(f"expires after {approval.expires_after}s")
    extras.append(f"dedup {approval.dedup_window}s")
    return text + " (" + ", ".join(extras) + ")"


def _excludes_nothing(policy_set: PolicySet, scopes: dict[str, _Scope],
                      today: dt.date) -> list[Finding]:
    findings = []
    action_rules = [r for r in policy_set.rules if r.id in scopes]
    for excl in _live_exclusions(policy_set, today):
        reachable = any(
            (not excl.excluded_actions or r.action in excl.excluded_actions)
            and _overlap(excl.verdicts, scopes[r.id].verdicts)
            and _overlap(excl.entity_types, scopes[r.id].types)
            for r in action_rules)
        if not reachable:
            listed = ", ".join(sorted(excl.excluded_actions)) or "any action"
            findings.append(_warn("excludes-nothing", excl,
                                  f"exclusion {excl.id!r} suppresses nothing: no rule proposes"
                                  f" {listed} for its verdicts and entity types"))
    return findings


# ---------------------------------------------------------------- satisfiability
def unsatisfiable(node: Node) -> bool:
    """True only when no evidence can satisfy the condition tree."""
    if isinstance(node, Condition):
        return _unsat_all([node])
    if isinstance(node, AnyOf):
        return all(unsatisfiable(n) for n in node.items)
    if isinstance(node, NotOf):
        return False  # would need tautology detection; unknown is not reported
    return _unsat_all(flatten_all(node.items))


def _unsat_all(members: list[Node]) -> bool:
    by_path: dict[str, list[Condition]] = {}
    for member in members:
        if isinstance(member, Condition):
            by_path.setdefault(member.field, []).append(member)
        elif unsatisfiable(member):
            return True
    return any(_unsat_path(conds) for conds in by_path.values())


def _unsat_path(conds: list[Condition]) -> bool:
    """Conditions on one path in one all-branch (element tests share one value)."""
    absent = any(c.op == "exists" and c.value is False for c in conds)
    present = any(c.op in _POSITIVE or (c.op == "exists" and c.value is True) for c in conds)
    if absent and present:
        return True
    allowed: set[tuple[str, object]] | None = None  # equality classes eq/in permit
    for c in conds:
        if c.op in ("eq", "in"):
            values = [c.value] if c.op == "eq" else list(c.value)
            keys = {k for k in map(value_key, values) if k is not None}
            allowed = keys if allowed is None else allowed & keys
    if allowed is not None:
        excluded: set[tuple[str, object]] = set()
        for c in conds:
            if c.op in ("ne", "not_in"):
                values = [c.value] if c.op == "ne" else list(c.value)
                excluded |= {k for k in map(value_key, values) if k is not None}
        if not allowed - excluded:
            return True
    low, high = _bounds([c for c in conds if c.op in ("gt", "gte", "lt", "lte")])
    if low is None and high is None:
        return False
    if _empty_range(low, high):
        return True
    if allowed is not None:
        # The shared value must be one of the allowed ones and also lie in the range.
        return not any(_in_range(_class_number(k), low, high) for k in allowed)
    return False


Bound = tuple[float, bool] | None  # (value, inclusive)


def _bounds(conds: list[Condition]) -> tuple[Bound, Bound]:
    low: Bound = None
    high: Bound = None
    for c in conds:
        number = to_number(c.value)
        if number is None:
            continue
        if c.op in ("gt", "gte"):
            bound = (float(number), c.op == "gte")
            if low is None or bound[0] > low[0] or (bound[0] == low[0] and not bound[1]):
                low = bound
        else:
            bound = (float(number), c.op == "lte")
            if high is None or bound[0] < high[0] or (bound[0] == high[0] and not bound[1]):
                high = bound
    return low, high


def _empty_range(low: Bound, high: Bound) -> bool:
    if low is None or high is None:
        return False
    if low[0] > high[0]:
        return True
    return low[0] == high[0] and not (low[1] and high[1])


def _class_number(key: tuple[str, object]) -> float | None:
    kind, value = key
    if kind == "b":
        return None
    number = to_number(value)
    return None if number is None or not math.isfinite(number) else float(number)


def _in_range(number: float | None, low: Bound, high: Bound) -> bool:
    if number is None:
        return False
    if low is not None and not (number >= low[0] if low[1] else number > low[0]):
        return False
    return high is None or (number <= high[0] if high[1] else number < high[0])
