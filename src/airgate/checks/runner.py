"""Policy tests: YAML suites of evidence and the decisions it must produce.

A suite (``kind: PolicyTest``, schemas/policy-test.schema.json) names a policy
file or directory and lists cases. Each case gives evidence, inline or as a file,
and either the decisions it must produce or ``expect_no_actions: true``.
Matching is an exact set by default: every decision that carries out an action
must be expected, and every expectation must meet its own decision. Decisions
suppressed by an exclusion carry out nothing, so they need listing only when a
case wants to see the suppression (``excluded: true``).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from airgate.catalog import Catalog
from airgate.checks.diff import diff_decisions
from airgate.checks.suites import (
    Case,
    Expectation,
    Suite,
    approval_mode,
    discover_suites,
    load_suites,
    policy_test_schema,
    printable,
)
from airgate.model import Decision, PolicySet

ENGINES = ("indexed", "durable")


@dataclass(frozen=True)
class CaseResult:
    suite: Suite
    case: Case
    decisions: tuple[Decision, ...]  # from the first engine
    missing: tuple[Expectation, ...] = ()
    unexpected: tuple[Decision, ...] = ()
    problems: tuple[str, ...] = ()  # evidence errors, engine disagreements
    catalog: Catalog | None = None  # the suite's policy set's: names its custom actions

    @property
    def passed(self) -> bool:
        return not (self.missing or self.unexpected or self.problems)


@dataclass(frozen=True)
class RuleRef:
    file: str
    id: str


@dataclass(frozen=True)
class Coverage:
    rules: tuple[RuleRef, ...]
    exercised: frozenset[RuleRef]

    @property
    def percent(self) -> float:
        if not self.rules:
            return 100.0
        return 100.0 * len(self.exercised) / len(self.rules)

    @property
    def uncovered(self) -> tuple[RuleRef, ...]:
        return tuple(r for r in self.rules if r not in self.exercised)


@dataclass(frozen=True)
class RunResult:
    results: tuple[CaseResult, ...]
    coverage: Coverage
    engines: tuple[str, ...]

    @property
    def failed(self) -> tuple[CaseResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    @property
    def passed(self) -> bool:
        return bool(self.results) and not self.failed


# ---------------------------------------------------------------- running
def durable_available() -> bool:
    """Whether the durable-rules engine can run here (it fails to import on some Pythons)."""
    try:
        import durable.lang  # noqa: F401

        from airgate.engine import durable as durable_engine  # noqa: F401
    except Exception:  # any failure to import (ImportError, a broken C extension) counts
        return False
    return True


def default_engines() -> tuple[str, ...]:
    """Both engines where durable-rules imports, else the indexed engine alone."""
    return ENGINES if durable_available() else ("indexed",)


class _Runner:
    """Loads each policy set once and compiles it once per engine and date."""

    def __init__(self, engines: Sequence[str]):
        self.engines = tuple(engines)
        self._sets: dict[tuple[tuple[str, ...], dt.date | None], PolicySet] = {}
        self._engines: dict[tuple[tuple[str, ...], dt.date | None, str], Any] = {}

    def policy_set(self, policy: tuple[str, ...], today: dt.date | None) -> PolicySet:
        key = (policy, today)
        if key not in self._sets:
            from airgate.policy.loader import load_policy_set

            self._sets[key] = load_policy_set(list(policy), today=today)
        return self._sets[key]

    def evaluate(self, suite: Suite, case: Case) -> tuple[list[list[Decision]], list[str]]:
        from airgate.engine.core import compile as compile_engine
        from airgate.errors import AirgateError

        today = case.today or suite.today
        policy_set = self.policy_set(suite.policy, today)
        try:
            evidence = _case_evidence(case)
        except AirgateError as exc:
            return [], [f"evidence: {printable(str(exc))}"]
        runs: list[list[Decision]] = []
        for name in self.engines:
            key = (suite.policy, today, name)
            if key not in self._engines:
                self._engines[key] = compile_engine(policy_set, engine=name, today=today)
            runs.append(list(self._engines[key].evaluate(evidence)))
        return runs, []


def _case_evidence(case: Case) -> list[Any]:
    from airgate.evidence.reader import load_evidence

    if case.evidence_file is not None:
        return list(load_evidence([case.evidence_file]))
    stream = io.StringIO(json.dumps(case.evidence))
    # Errors in inline evidence name the case, since the JSON text is ours.
    stream.name = f"{case.location.file}:{case.location.line} (inline evidence)"
    return list(load_evidence([stream]))


def run_suites(
    suites: Iterable[Suite],
    *,
    engines: Sequence[str] | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
) -> RunResult:
    """Run every case of ``suites`` on each engine; compare the decisions with the expectations.

    With several engines, any difference between their decisions fails the case.
    Policy sets that cannot be loaded raise :class:`airgate.errors.PolicyLoadErrors`.
    """
    runner = _Runner(engines or default_engines())
    results: list[CaseResult] = []
    all_rules: dict[RuleRef, None] = {}
    exercised: set[RuleRef] = set()
    for suite in suites:
        for case in suite.cases:
            policy_set = runner.policy_set(suite.policy, case.today or suite.today)
            files = {r.id: os.path.normpath(p.file) for p in policy_set.policies for r in p.rules}
            for rule_id, file in files.items():
                all_rules.setdefault(RuleRef(file, rule_id), None)
            runs, problems = runner.evaluate(suite, case)
            for decisions in runs:
                for d in decisions:
                    for rule_id in (*d.rules, *d.suppressed_by):
                        if rule_id in files:
                            exercised.add(RuleRef(files[rule_id], rule_id))
            result = replace(_check_case(suite, case, runs, problems, runner.engines),
                             catalog=policy_set.catalog)
            results.append(result)
            if on_result is not None:
                on_result(result)
    coverage = Coverage(tuple(all_rules), frozenset(exercised))
    return RunResult(tuple(results), coverage, runner.engines)


def _check_case(
    suite: Suite, case: Case, runs: list[list[Decision]], problems: list[str],
    engines: tuple[str, ...],
) -> CaseResult:
    if not runs:
        return CaseResult(suite, case, (), problems=tuple(problems))
    decisions = runs[0]
    for name, other in zip(engines[1:], runs[1:], strict=True):
        if other != decisions:
            problems.append(_disagreement(engines[0], name, decisions, other))
    matched = _match(case.expect, decisions)
    missing = tuple(e for i, e in enumerate(case.expect) if i not in matched)
    used = set(matched.values())
    unexpected: tuple[Decision, ...] = ()
    if not case.allow_other_decisions:
        unexpected = tuple(
            d for j, d in enumerate(decisions) if j not in used and not d.excluded
        )
    return CaseResult(suite, case, tuple(decisions), missing, unexpected, tuple(problems))


def _disagreement(first: str, second: str, a: list[Decision], b: list[Decision]) -> str:
    lines = [f"engines disagree: {first} against {second}"]
    for change in diff_decisions(a, b):
        lines.append(f"  {change.describe()}")
    if len(lines) == 1:
        lines.append("  same decisions in a different order")
    return "\n".join(lines)


def _match(expect: Sequence[Expectation], decisions: Sequence[Decision]) -> dict[int, int]:
    """A maximum one-to-one matching of expectations to decisions (augmenting paths).

    Greedy matching would fail a loose expectation that took the decision a
    stricter one needed; suites are small, so the simple algorithm is plenty.
    """
    fits = [[j for j, d in enumerate(decisions) if e.matches(d)] for e in expect]
    owner: dict[int, int] = {}  # decision index -> expectation index

    def place(i: int, seen: set[int]) -> bool:
        for j in fits[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or place(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(len(expect)):
        place(i, set())
    return {i: j for j, i in owner.items()}


# ---------------------------------------------------------------- describing
def describe_decision(decision: Decision) -> str:
    """One line naming a decision's action, entity, approval and rules (escaped)."""
    entity = decision.entity
    text = (
        f"{decision.action} on {entity.type} {entity.name!r} (key {entity.key!r}"
        f", investigation {decision.investigation!r}) approval={approval_mode(decision)}"
        f" roles={','.join(decision.approval.roles)} quorum={decision.approval.quorum}"
        f" rules={','.join(decision.rules)}"
    )
    if decision.excluded:
        text += " excluded by " + ",".join(decision.suppressed_by)
    return printable(text)


__all__ = [
    "Case", "CaseResult", "Coverage", "Expectation", "RuleRef", "RunResult", "Suite",
    "default_engines", "describe_decision", "discover_suites", "durable_available",
    "load_suites", "policy_test_schema", "printable", "run_suites",
]
