"""Decision assembly, shared by every engine once it knows which rules matched.

An engine's only job is matching: for each evidence item, which action rules
and which exclusions hold. Everything after that (device automation levels,
merging per entity and action, approval strength, exclusions, ordering) lives
here, so the indexed and durable-rules engines cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from airgate.catalog import DEVICE_SIDE_TYPES, GLOBAL_ADMIN, ActionSpec
from airgate.model import Approval, Automation, Decision, EntityRef, Evidence, Rule

AUTOMATION_NONE = "automation:none"

# Severity order of verdicts, for the verdict a merged decision reports.
_SEVERITY = {"malicious": 0, "suspicious": 1, "unknown": 2, "unknownFutureValue": 3,
             "noThreatsFound": 4}

# Folders, after normalization (lower case, "\" separators, drive letter dropped).
# "*" inside a pattern stands for one folder name; a trailing "\" means "anything below".
OS_FOLDERS = ("\\windows\\", "\\program files\\", "\\program files (x86)\\")
TEMP_FOLDERS = (
    "\\users\\*\\appdata\\local\\temp\\", "\\windows\\temp\\", "\\users\\*\\downloads\\",
    "\\documents and settings\\*\\local settings\\temp\\", "\\temp\\",
)


def _folder_regex(folders: tuple[str, ...]) -> re.Pattern[str]:
    parts = [re.escape(f).replace(r"\*", r"[^\\]+") for f in folders]
    return re.compile("^(?:" + "|".join(parts) + ")")


_OS_RE = _folder_regex(OS_FOLDERS)
_TEMP_RE = _folder_regex(TEMP_FOLDERS)
_DRIVE = re.compile(r"^(?:[a-z]:|\\\\\?\\[a-z]:)")


def normalize_path(path: str) -> str:
    """Lower case, backslashes, no drive letter: ``C:/Windows/x`` -> ``\\windows\\x``."""
    text = path.strip().replace("/", "\\").lower()
    text = _DRIVE.sub("", text)
    return text if text.startswith("\\") else "\\" + text


def _get(fields: Mapping[str, Any], key: str) -> Any:
    value = fields.get(key)
    return value if isinstance(value, str) and value.strip() else None


def file_path(fields: Mapping[str, Any]) -> str | None:
    """The full path of the file an evidence item is about, if its fields name one."""
    for holder_key in ("fileDetails", "imageFile"):
        holder = fields.get(holder_key)
        if isinstance(holder, Mapping):
            found = _join(_get(holder, "filePath"), _get(holder, "fileName"))
            if found:
                return found
    return _join(_get(fields, "path"), _get(fields, "fileName") or _get(fields, "name"))


def _join(directory: str | None, name: str | None) -> str | None:
    if directory is None:
        return None
    if name is None or directory.replace("/", "\\").lower().endswith("\\" + name.lower()):
        return directory
    return directory.rstrip("\\/") + "\\" + name


def automation_requires(level: str, verdict: str, fields: Mapping[str, Any]) -> bool:
    """Whether a device automation level demands approval where the rules did not."""
    if level == "full":
        return verdict != "malicious"
    if level in ("semi-all", "none"):
        return True
    if verdict != "malicious":
        return True
    path = file_path(fields)
    if path is None:
        return True  # nothing tells us where the file is: stay conservative
    normalized = normalize_path(path)
    if level == "semi-core":
        return _OS_RE.match(normalized) is not None
    return _TEMP_RE.match(normalized) is None  # semi-non-temp


# ---------------------------------------------------------------- compiled records
@dataclass(frozen=True, eq=False)
class CompiledRule:
    """An action rule ready to evaluate: predicate, catalog lookups and approval resolved."""

    rule: Rule
    order: int
    id: str
    action: str
    spec: ActionSpec
    approval: Approval  # roles resolved from the catalog when the rule gave none
    where: Any  # Predicate | None
    device_action: bool  # category device: automation levels may apply
    # The rule's entity types narrowed to the action's targets (a rule without
    # an entity list proposes its action only where the action applies).
    entity_types: frozenset[str] = frozenset()


@dataclass(frozen=True, eq=False)
class CompiledExclusion:
    rule: Rule
    id: str
    actions: frozenset[str] | None  # None: every action
    where: Any  # Predicate | None


@dataclass
class _Entry:
    """One (investigation, entity key, action) being merged."""

    evidence: Evidence
    contributions: list[tuple[CompiledRule, bool]] = field(default_factory=list)
    suppressed: set[str] = field(default_factory=set)
    reasons: list[str] = field(default_factory=list)


class Assembler:
    """Collects matches evidence by evidence and turns them into ordered decisions.

    ``add`` takes one evidence item with its matched rules and exclusions;
    ``flush`` returns the merged decisions so far, in order of first evidence
    appearance then action id, and forgets them.
    """

    def __init__(self, automation: Automation | None):
        self._automation = automation
        # (investigation, key) -> {action: entry}; dicts keep first-appearance order
        self._groups: dict[tuple[str, str], dict[str, _Entry]] = {}

    def add(self, ev: Evidence, rules: Iterable[CompiledRule],
            exclusions: Iterable[CompiledExclusion]) -> bool:
        """Record one evidence item's matches; False when no action rule matched."""
        matched = tuple(rules)
        if not matched:
            return False
        group = self._groups.setdefault((ev.investigation, ev.key), {})
        excluding = tuple(exclusions)
        level = None
        if self._automation is not None and ev.entity_type in DEVICE_SIDE_TYPES:
            level = self._automation.level_for(ev.device_group)
        for crule in matched:
            entry = group.get(crule.action)
            if entry is None:
                entry = group[crule.action] = _Entry(ev)
            elif _SEVERITY.get(ev.verdict, 9) < _SEVERITY.get(entry.evidence.verdict, 9):
                entry.evidence = ev
            flipped = False
            if level is not None and crule.device_action:
                if level == "none":
                    entry.suppressed.add(AUTOMATION_NONE)
                    _note(entry, f"device group {_group(ev)} has automation level none:"
                                 " no automated response")
                elif not crule.approval.required and automation_requires(
                        level, ev.verdict, ev.fields):
                    flipped = True
                    _note(entry, f"device group {_group(ev)} has automation level {level}:"
                                 " approval required")
            entry.contributions.append((crule, flipped))
            for exclusion in excluding:
                if exclusion.actions is None or crule.action in exclusion.actions:
                    entry.suppressed.add(exclusion.id)
        return True

    def pending(self) -> bool:
        return bool(self._groups)

    def flush(self) -> list[Decision]:
        out: list[Decision] = []
        for (investigation, _key), actions in self._groups.items():
            for action in sorted(actions):
                out.append(_decide(investigation, action, actions[action]))
        self._groups = {}
        return out


def _group(ev: Evidence) -> str:
    return repr(ev.device_group) if ev.device_group is not None else "(default)"


def _note(entry: _Entry, reason: str) -> None:
    if reason not in entry.reasons:
        entry.reasons.append(reason)


def _decide(investigation: str, action: str, entry: _Entry) -> Decision:
    contributions = entry.contributions
    ev = entry.evidence
    reasons = list(entry.reasons)
    if len(contributions) == 1 and not contributions[0][1]:
        crule = contributions[0][0]
        approval = crule.approval
        rule_ids: tuple[str, ...] = (crule.id,)
    else:
        approval = merge_approvals(
            [(c.approval, flipped) for c, flipped in contributions], reasons)
        rule_ids = tuple(sorted({c.id for c, _ in contributions}))
    revert = [c.rule.revert_after for c, _ in contributions if c.rule.revert_after is not None]
    per_hour = [c.rule.max_automatic_per_hour for c, _ in contributions
                if c.rule.max_automatic_per_hour is not None]
    return Decision(
        investigation=investigation,
        entity=EntityRef(ev.entity_type, ev.key, ev.name),
        action=action,
        approval=approval,
        rules=rule_ids,
        suppressed_by=tuple(sorted(entry.suppressed)),
        reasons=tuple(reasons),
        revert_after=min(revert) if revert else None,
        max_automatic_per_hour=min(per_hour) if per_hour else None,
        evidence=ev,
    )


def merge_approvals(parts: list[tuple[Approval, bool]], reasons: list[str]) -> Approval:
    """The approval no weaker than any part; ``(approval, forced)`` forces ``required``.

    With any part required, only the required parts decide roles (intersected),
    quorum (max), comment (any), expiry (min) and dedup window (max).
    """
    required = [a for a, forced in parts if a.required or forced]
    deciding = required or [a for a, _ in parts]
    roles = set(deciding[0].roles)
    for approval in deciding[1:]:
        roles &= set(approval.roles)
    if not roles:
        roles = {GLOBAL_ADMIN}
        reasons.append("the matching rules allow no common approver role: only global-admin"
                       " may approve")
    return Approval(
        required=bool(required),
        roles=tuple(sorted(roles)),
        quorum=max(a.quorum for a in deciding),
        expires_after=min(a.expires_after for a in deciding),
        require_comment=any(a.require_comment for a in deciding),
        dedup_window=max(a.dedup_window for a in deciding),
    )


def assemble(items: Iterable[tuple[Evidence, Iterable[CompiledRule],
                                   Iterable[CompiledExclusion]]],
             automation: Automation | None) -> Iterator[Decision]:
    """Decisions for a whole stream of (evidence, matched rules, matched exclusions)."""
    assembler = Assembler(automation)
    for ev, rules, exclusions in items:
        assembler.add(ev, rules, exclusions)
    yield from assembler.flush()
