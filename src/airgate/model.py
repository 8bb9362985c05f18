"""Immutable records shared by every stage: policies, evidence, decisions."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from airgate.catalog import DEFAULT_CATALOG, Catalog
from airgate.errors import Location

WEEK = 7 * 86400
HOUR = 3600

VERDICTS = ("malicious", "suspicious", "noThreatsFound", "unknown", "unknownFutureValue")
_VERDICT_ALIASES = {v.lower(): v for v in VERDICTS}
_VERDICT_ALIASES.update(
    {"no threats found": "noThreatsFound", "nothreats": "noThreatsFound", "clean": "noThreatsFound"}
)


def normalize_verdict(text: object) -> str | None:
    """The Graph spelling of a verdict written any documented way, or None if unknown."""
    if not isinstance(text, str):
        return None
    return _VERDICT_ALIASES.get(" ".join(text.split()).lower())


AUTOMATION_LEVELS = ("full", "semi-all", "semi-core", "semi-non-temp", "none")
OPERATORS = (
    "eq", "ne", "in", "not_in", "exists", "gt", "gte", "lt", "lte",
    "glob", "regex", "contains", "cidr",
)


# ---------------------------------------------------------------- conditions
@dataclass(frozen=True)
class Condition:
    """``field <op> value``; ``field`` is a dotted path into the evidence fields."""

    field: str
    op: str
    value: Any
    # ``dataclasses.field`` spelled in full: the attribute ``field`` shadows it here.
    location: Location = dataclasses.field(default_factory=Location, compare=False)


@dataclass(frozen=True)
class AllOf:
    items: tuple[Node, ...]
    location: Location = field(default_factory=Location, compare=False)


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Node, ...]
    location: Location = field(default_factory=Location, compare=False)


@dataclass(frozen=True)
class NotOf:
    item: Node
    location: Location = field(default_factory=Location, compare=False)


Node = Condition | AllOf | AnyOf | NotOf


# ---------------------------------------------------------------- policies
@dataclass(frozen=True)
class Approval:
    """Whether a person must approve, who, how many, and for how long the request stands.

    ``roles`` empty means "the action's default approver role from the catalog".
    """

    required: bool = True
    roles: tuple[str, ...] = ()
    quorum: int = 1
    expires_after: int = WEEK
    require_comment: bool = False
    dedup_window: int = HOUR

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": "required" if self.required else "auto",
            "roles": list(self.roles),
            "quorum": self.quorum,
            "expires_after": self.expires_after,
            "require_comment": self.require_comment,
            "dedup_window": self.dedup_window,
        }


AUTO = Approval(required=False)


@dataclass(frozen=True)
class Rule:
    id: str
    policy: str
    effect: Literal["action", "exclude"]
    verdicts: frozenset[str] = frozenset()  # empty: any verdict
    entity_types: frozenset[str] = frozenset()  # empty: any entity type
    where: Node | None = None
    description: str = ""
    # effect == "action"
    action: str | None = None
    approval: Approval | None = None
    revert_after: int | None = None
    max_automatic_per_hour: int | None = None
    # effect == "exclude"
    reason: str | None = None
    excluded_actions: frozenset[str] = frozenset()  # empty: every action
    expires: dt.date | None = None
    location: Location = field(default_factory=Location, compare=False)

    def is_expired(self, today: dt.date) -> bool:
        return self.expires is not None and self.expires < today


@dataclass(frozen=True)
class Automation:
    """Device automation levels per device group (DOMAIN.md)."""

    default_level: str = "full"
    groups: Mapping[str, str] = field(default_factory=dict)
    location: Location = field(default_factory=Location, compare=False)

    def level_for(self, group: str | None) -> str:
        if group is None:
            return self.default_level
        return self.groups.get(group, self.default_level)


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    rules: tuple[Rule, ...]
    file: str
    automation: Automation | None = None


@dataclass(frozen=True)
class PolicySet:
    """Every policy of a file or directory, with the catalog its custom actions extend."""

    policies: tuple[Policy, ...]
    catalog: Catalog = DEFAULT_CATALOG
    automation: Automation | None = None

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(r for p in self.policies for r in p.rules)


# ---------------------------------------------------------------- evidence
@dataclass(frozen=True)
class Evidence:
    """One piece of evidence, normalized: an entity with a verdict and its fields.

    ``fields`` keeps the entity's own field names (Graph names for Graph input);
    conditions address them with dotted paths. ``key`` is the entity's stable
    identity, on which the queue deduplicates.
    """

    investigation: str
    entity_type: str
    verdict: str
    key: str
    name: str
    fields: Mapping[str, Any]
    source: str = "native"  # input format: native | graph
    # Who proposed the remediation (DOMAIN.md action sources):
    # automatedInvestigation | antivirus | manual
    action_source: str = "automatedInvestigation"
    odata_type: str | None = None
    device_group: str | None = None
    location: Location | None = field(default=None, compare=False)


# ---------------------------------------------------------------- decisions
@dataclass(frozen=True)
class EntityRef:
    type: str
    key: str
    name: str


@dataclass(frozen=True)
class Decision:
    """One action on one entity, with the approval it needs and the rules behind it."""

    investigation: str
    entity: EntityRef
    action: str
    approval: Approval  # roles resolved: never empty
    rules: tuple[str, ...]
    suppressed_by: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # why the approval is what it is (automation level, ...)
    revert_after: int | None = None
    max_automatic_per_hour: int | None = None
    evidence: Evidence | None = field(default=None, compare=False)

    @property
    def excluded(self) -> bool:
        return bool(self.suppressed_by)
