"""Compile a policy set once, then turn evidence into decisions.

``compile`` builds an engine-independent :class:`CompiledPolicy` (predicates,
catalog lookups, resolved approvals, the verdict/entity index, live
exclusions) and wraps it with a matcher. The default matcher is airgate's own
index; ``engine="durable"`` swaps in durable-rules for the matching step only.
Merging, exclusions, automation levels and ordering are in :mod:`airgate.decide`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from .catalog import DEFAULT_CATALOG, Catalog
from .conditions import compile_node
from .decide import Assembler, CompiledExclusion, CompiledRule
from .errors import PolicyError, UsageError
from .model import Approval, Automation, Decision, Evidence, PolicySet, Rule

ENGINES = ("indexed", "durable")
_CACHE_LIMIT = 4096  # distinct (verdict, entity type) pairs remembered


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


class Matcher(Protocol):
    """The only engine-specific step: which action rules and exclusions hold for an item."""

    def match(self, ev: Evidence) -> tuple[list[CompiledRule], list[CompiledExclusion]]: ...


class _Index:
    """Items bucketed by (verdict, entity type), either side possibly a wildcard."""

    def __init__(self, items: Iterable[tuple[frozenset[str], frozenset[str], Any]]):
        self._buckets: dict[tuple[str | None, str | None], list[tuple[int, Any]]] = {}
        for order, (verdicts, etypes, item) in enumerate(items):
            for verdict in verdicts or (None,):
                for etype in etypes or (None,):
                    self._buckets.setdefault((verdict, etype), []).append((order, item))
        self._cache: dict[str, dict[str, tuple[Any, ...]]] = {}

    def candidates(self, verdict: str, etype: str) -> tuple[Any, ...]:
        per_verdict = self._cache.get(verdict)
        if per_verdict is not None:
            found = per_verdict.get(etype)
            if found is not None:
                return found
        merged: dict[int, Any] = {}
        for key in ((verdict, etype), (verdict, None), (None, etype), (None, None)):
            for order, item in self._buckets.get(key, ()):
                merged[order] = item
        result = tuple(merged[k] for k in sorted(merged))
        if sum(len(v) for v in self._cache.values()) < _CACHE_LIMIT:
            self._cache.setdefault(verdict, {})[etype] = result
        return result


class IndexedMatcher:
    """airgate's own matcher: index by verdict and entity type, then run the predicates."""

    def __init__(self, compiled: CompiledPolicy):
        self._rules = _Index((c.rule.verdicts, c.entity_types, c) for c in compiled.rules)
        self._exclusions = _Index((c.rule.verdicts, c.rule.entity_types, c)
                                  for c in compiled.exclusions)

    def candidates(self, ev: Evidence) -> tuple[CompiledRule, ...]:
        """Action rules whose verdict and entity type admit the item (conditions untested)."""
        return self._rules.candidates(ev.verdict, ev.entity_type)

    def match(self, ev: Evidence) -> tuple[list[CompiledRule], list[CompiledExclusion]]:
        fields = ev.fields
        rules = [c for c in self._rules.candidates(ev.verdict, ev.entity_type)
                 if c.where is None or c.where(fields)]
        if not rules:
            return rules, []
        exclusions = [c for c in self._exclusions.candidates(ev.verdict, ev.entity_type)
                      if c.where is None or c.where(fields)]
        return rules, exclusions


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a whole input is merged.

    ``evaluate`` keeps every merged decision until the end, and each
    generation-2 pass of the collector rescans that growing table: per-item cost
    rose by half from 10,000 to 100,000 items (benchmarks/README.md). Matching
    and merging create no reference cycles, so the pause frees nothing late; the
    collector's previous state is restored even on error.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True)
class Batch:
    """Decisions of one run of evidence, and the items of that run that got none."""

    decisions: list[Decision]
    unmatched: list[Evidence]


class Engine:
    """A compiled policy set with a matcher. Reusable and safe to call repeatedly."""

    def __init__(self, compiled: CompiledPolicy, matcher: Matcher, name: str = "indexed"):
        self.compiled = compiled
        self.matcher = matcher
        self.name = name

    def evaluate(self, evidence: Iterable[Evidence]) -> list[Decision]:
        """Every decision, merged across the whole input, in deterministic order."""
        assembler = Assembler(self.compiled.automation)
        match = self.matcher.match
        with _gc_paused():
            for ev in evidence:
                rules, exclusions = match(ev)
                if rules:
                    assembler.add(ev, rules, exclusions)
            return assembler.flush()

    def iter_batches(self, evidence: Iterable[Evidence]) -> Iterator[Batch]:
        """Stream decisions investigation by investigation, with constant memory.

        Items of one investigation are merged while they arrive together; a
        batch is emitted whenever the investigation id changes.
        """
        assembler = Assembler(self.compiled.automation)
        match = self.matcher.match
        current: str | None = None
        unmatched: list[Evidence] = []
        for ev in evidence:
            if ev.investigation != current:
                if assembler.pending() or unmatched:
                    yield Batch(assembler.flush(), unmatched)
                    unmatched = []
                current = ev.investigation
            rules, exclusions = match(ev)
            if rules:
                assembler.add(ev, rules, exclusions)
            else:
                unmatched.append(ev)
        if assembler.pending() or unmatched:
            yield Batch(assembler.flush(), unmatched)

    def iter_decisions(self, evidence: Iterable[Evidence]) -> Iterator[Decision]:
        """Like :meth:`evaluate`, streamed one investigation at a time."""
        for batch in self.iter_batches(evidence):
            yield from batch.decisions


def compile(policy_set: PolicySet, *, engine: str = "indexed",
            today: dt.date | None = None) -> Engine:
    """Compile a policy set for evaluation with the ``indexed`` or ``durable`` engine."""
    compiled = compile_policy(policy_set, today=today)
    if engine == "indexed":
        return Engine(compiled, IndexedMatcher(compiled), "indexed")
    if engine == "durable":
        return Engine(compiled, _durable_matcher(compiled), "durable")
    raise UsageError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")


def _durable_matcher(compiled: CompiledPolicy) -> Matcher:
    import importlib

    try:
        durable_engine = importlib.import_module(f"{__package__}.durable_engine")
    except ImportError as exc:
        raise UsageError(
            "the durable engine is not available (" + str(exc) + "): install it with"
            " pip install 'airgate[durable]', or use --engine indexed") from exc
    matcher: Matcher = durable_engine.DurableMatcher(compiled)
    return matcher


def decision_to_dict(decision: Decision, catalog: Catalog | None = None) -> dict[str, Any]:
    """The stable JSON form of a decision (schemas/decision.schema.json).

    ``catalog`` (the policy set's) names custom actions; built-in ones are known anyway.
    """
    spec = (catalog or DEFAULT_CATALOG).get(decision.action)
    return {
        "investigation": decision.investigation,
        "entity": {"type": decision.entity.type, "key": decision.entity.key,
                   "name": decision.entity.name},
        "action": decision.action,
        "action_display_name": spec.display_name if spec else decision.action,
        "category": spec.category if spec else "custom",
        "approval": decision.approval.as_dict(),
        "rules": list(decision.rules),
        "excluded": decision.excluded,
        "suppressed_by": list(decision.suppressed_by),
        "reasons": list(decision.reasons),
        "revert_after": decision.revert_after,
        "max_automatic_per_hour": decision.max_automatic_per_hour,
        "verdict": decision.evidence.verdict if decision.evidence is not None else None,
    }
