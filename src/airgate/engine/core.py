"""Compile a policy set once, then turn evidence into decisions.

``compile`` builds an engine-independent ``CompiledPolicy`` (``compiled.py``:
predicates, catalog lookups, resolved approvals, the verdict/entity index,
live exclusions) and wraps it with a matcher. The default matcher is airgate's own
index; ``engine="durable"`` swaps in durable-rules for the matching step only.
Merging, exclusions, automation levels and ordering are in :mod:`airgate.engine.decide`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from airgate.engine.compiled import CompiledPolicy, compile_policy
from airgate.engine.decide import Assembler, CompiledExclusion, CompiledRule
from airgate.errors import UsageError
from airgate.gcpause import gc_paused
from airgate.model import Decision, Evidence, PolicySet

ENGINES = ("indexed", "durable")
_CACHE_LIMIT = 4096  # distinct (verdict, entity type) pairs remembered


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
        # Every merged decision is kept until the end: without the pause, per-item cost
        # rose by half from 10,000 to 100,000 items (the collector rescanning them).
        with gc_paused():
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
        durable_engine = importlib.import_module("airgate.engine.durable")
    except ImportError as exc:
        raise UsageError(
            "the durable engine is not available (" + str(exc) + "): install it with"
            " pip install 'airgate[durable]', or use --engine indexed") from exc
    matcher: Matcher = durable_engine.DurableMatcher(compiled)
    return matcher
