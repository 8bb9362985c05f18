"""Impact diff: the decisions a policy change adds, removes or changes on the same evidence.

Decisions are matched by (investigation, entity key, action): the identity on
which the queue deduplicates. A matched pair is *changed* when anything that
decides what happens differs: approval (mode, roles, quorum, time-out, comment,
dedup window), exclusion, the rules behind it, automatic revert or rate limit.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from airgate.catalog import Catalog
from airgate.model import Decision, Evidence
from airgate.render import escape

Kind = Literal["added", "removed", "changed"]
DecisionKey = tuple[str, str, str]  # investigation, entity key, action

# (name, how to read it from a decision); the order is the order of the report.
_FIELDS: tuple[tuple[str, Any], ...] = (
    ("approval", lambda d: "required" if d.approval.required else "auto"),
    ("roles", lambda d: sorted(d.approval.roles)),
    ("quorum", lambda d: d.approval.quorum),
    ("expires_after", lambda d: d.approval.expires_after),
    ("require_comment", lambda d: d.approval.require_comment),
    ("dedup_window", lambda d: d.approval.dedup_window),
    ("excluded", lambda d: d.excluded),
    ("suppressed_by", lambda d: sorted(d.suppressed_by)),
    ("rules", lambda d: sorted(d.rules)),
    ("revert_after", lambda d: d.revert_after),
    ("max_automatic_per_hour", lambda d: d.max_automatic_per_hour),
)
FIELDS = tuple(name for name, _ in _FIELDS)


def decision_key(decision: Decision) -> DecisionKey:
    return (decision.investigation, decision.entity.key, decision.action)


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Change:
    """One decision added, removed or changed by the head policy."""

    kind: Kind
    before: Decision | None
    after: Decision | None
    fields: tuple[FieldChange, ...] = ()

    @property
    def decision(self) -> Decision:
        found = self.after or self.before
        assert found is not None  # a Change always holds at least one side
        return found

    @property
    def key(self) -> DecisionKey:
        return decision_key(self.decision)

    def describe(self) -> str:
        d = self.decision
        head = f"{self.kind}: {d.action} on {d.entity.type} {d.entity.name!r} ({d.investigation})"
        if self.kind == "changed":
            head += ": " + "; ".join(
                f"{c.field} {_show(c.before)} -> {_show(c.after)}" for c in self.fields
            )
        return escape(head)


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    return str(value)


def diff_decisions(before: Iterable[Decision], after: Iterable[Decision]) -> list[Change]:
    """Decisions removed, added and changed between two evaluations of the same evidence.

    The result follows the order of ``after`` (then the removed ones in the order
    of ``before``), so it is deterministic when the engines are.
    """
    old = _by_key(before)
    new = _by_key(after)
    changes: list[Change] = []
    for key, decision in new.items():
        if key not in old:
            changes.append(Change("added", None, decision))
            continue
        fields = field_changes(old[key], decision)
        if fields:
            changes.append(Change("changed", old[key], decision, fields))
    changes.extend(Change("removed", d, None) for k, d in old.items() if k not in new)
    return changes


def field_changes(before: Decision, after: Decision) -> tuple[FieldChange, ...]:
    """What differs between two decisions on the same entity and action."""
    out = []
    for name, read in _FIELDS:
        a, b = read(before), read(after)
        if a != b:
            out.append(FieldChange(name, a, b))
    return tuple(out)


def _by_key(decisions: Iterable[Decision]) -> dict[DecisionKey, Decision]:
    # The engine emits one decision per (investigation, entity, action); should two
    # ever share a key, the first stands and the diff stays well defined.
    out: dict[DecisionKey, Decision] = {}
    for d in decisions:
        out.setdefault(decision_key(d), d)
    return out


@dataclass(frozen=True)
class Impact:
    """The result of evaluating the same evidence under a base and a head policy."""

    changes: tuple[Change, ...]
    before: tuple[Decision, ...]
    after: tuple[Decision, ...]
    before_catalog: Catalog | None = None  # each policy set's: they name custom actions
    after_catalog: Catalog | None = None

    def count(self, kind: Kind) -> int:
        return sum(1 for c in self.changes if c.kind == kind)

    @property
    def unchanged(self) -> int:
        return len(self.after) - self.count("added") - self.count("changed")


def policy_impact(
    base: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    head: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    evidence: Sequence[Evidence],
    *,
    engine: str = "indexed",
    today: dt.date | None = None,
) -> Impact:
    """Evaluate ``evidence`` under the ``base`` and ``head`` policy sets and diff the decisions."""
    from airgate.engine.core import compile as compile_engine
    from airgate.policy.loader import load_policy_set

    before = compile_engine(load_policy_set(base, today=today), engine=engine, today=today)
    after = compile_engine(load_policy_set(head, today=today), engine=engine, today=today)
    old = tuple(before.evaluate(evidence))
    new = tuple(after.evaluate(evidence))
    return Impact(tuple(diff_decisions(old, new)), old, new,
                  before.compiled.policy_set.catalog, after.compiled.policy_set.catalog)


def change_to_dict(change: Change, before_catalog: Catalog | None = None,
                   after_catalog: Catalog | None = None) -> dict[str, Any]:
    """The JSON of one change: kind, identity, the fields that differ, both decisions
    (custom actions named from the catalogs of the base and head policy sets)."""
    from airgate.engine.decision_json import decision_to_dict

    d = change.decision
    return {
        "change": change.kind,
        "investigation": d.investigation,
        "entity": {"type": d.entity.type, "key": d.entity.key, "name": d.entity.name},
        "action": d.action,
        "fields": [
            {"field": c.field, "before": c.before, "after": c.after} for c in change.fields
        ],
        "before": (decision_to_dict(change.before, before_catalog)
                   if change.before is not None else None),
        "after": (decision_to_dict(change.after, after_catalog)
                  if change.after is not None else None),
    }


__all__ = [
    "FIELDS", "Change", "FieldChange", "Impact", "change_to_dict", "decision_key",
    "diff_decisions", "field_changes", "policy_impact",
]
