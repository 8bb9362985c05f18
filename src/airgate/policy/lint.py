"""Checks of meaning on policy documents: findings are values, never exceptions.

The checks walk the raw documents (not the model) so that they can point at the
exact YAML node and keep going past documents that failed the schema; every
value is type-checked before use because the schema may already have failed.
"""

from __future__ import annotations

import datetime as dt
import difflib
import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from airgate.catalog import BUILTIN_ACTIONS, BUILTIN_ROLES, ENTITY_TYPES
from airgate.errors import Finding, Location, Severity
from airgate.model import OPERATORS, VERDICTS, normalize_verdict
from airgate.policy.durations import parse_duration
from airgate.policy.yamlsrc import Document

PathArg = str | os.PathLike[str]
JsonPath = tuple[str | int, ...]


# Every code a lint finding may carry, with a one-line description (SARIF rules, docs);
# checks.validate.CODES adds the static analysis codes.
CODES: dict[str, str] = {
    "schema": "The document does not follow schemas/policy.schema.json.",
    "unknown-key": "A key the policy language does not know.",
    "yaml": "The file is not valid YAML.",
    "yaml-tag": "A YAML tag other than plain data (e.g. !!python/object).",
    "duplicate-key": "A key appears twice in one mapping.",
    "too-large": "The file or its alias expansion is above the size limit.",
    "too-deep": "The YAML nesting is too deep.",
    "encoding": "The file is not UTF-8.",
    "empty": "The file is empty.",
    "input": "The file cannot be read.",
    "not-found": "The path does not exist.",
    "no-policy": "A file or directory holds no Policy document.",
    "unknown-action": "An action that is neither built in nor declared by the set.",
    "action-target": "An action that cannot target the rule's entity type.",
    "unknown-entity": "An entity type that is neither known nor a custom action target.",
    "unknown-verdict": "A verdict that is not malicious, suspicious, noThreatsFound or unknown.",
    "duplicate-rule-id": "Two rules of the set share an id.",
    "duplicate-action": "A custom action declared twice or named like a built-in action.",
    "duplicate-automation": "More than one automation block in the set.",
    "bad-duration": "A duration that is not like 90s, 15m, 1h, 7d.",
    "bad-date": "A date that is not a real YYYY-MM-DD date.",
    "bad-regex": "A regular expression Python cannot compile.",
    "bad-glob": "A glob pattern with an unclosed [ set.",
    "bad-cidr": "An address range that is not an IP network.",
    "bad-quorum": "A quorum below 1.",
    "bad-condition": "A condition with no operator, several operators, or no field.",
    "missing-reason": "An exclusion without a reason.",
    "expired-exclusion": "An exclusion whose expiry date has passed; it no longer applies.",
    "no-effect": "A rule with neither an action nor effect: exclude.",
    "conflicting-effect": "A rule with both an action and effect: exclude.",
    "unknown-role": "An approver role that is not built in (custom roles come from config).",
    "ignored-field": "A field that has no effect on this kind of rule.",
}

_ACTION_ONLY = ("approval", "revert_after", "max_automatic_per_hour")
_EXCLUDE_ONLY = ("reason", "actions", "expires")
_FIELDLESS = ("all", "any", "not")
_VERDICT_NAMES = ", ".join(v for v in VERDICTS if v != "unknownFutureValue")
# Matched lowercased, so that ``Malicous`` and ``no threat found`` find their verdict.
_VERDICT_SPELLINGS = [v.lower() for v in VERDICTS] + ["no threats found", "clean"]


@dataclass
class _SetState:
    """What the checks learn across all documents of a set."""

    today: dt.date
    actions: dict[str, frozenset[str]] = field(default_factory=dict)  # id -> targets
    custom_at: dict[str, Location] = field(default_factory=dict)
    rule_at: dict[str, Location] = field(default_factory=dict)
    automation_at: Location | None = None
    entity_types: set[str] = field(default_factory=lambda: set(ENTITY_TYPES))


def _where(loc: Location) -> str:
    return f"{loc.file}:{loc.line}:{loc.column}"


def _q(value: Any) -> str:
    """Quote a value for a message; unlike repr, keep Windows paths' backslashes single."""
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _suggest(word: str, options: Iterable[str]) -> str:
    options = list(options)
    # Graph writes subtypes as fileEvidence; policies name the entity type file.
    if word.endswith("Evidence") and word[: -len("Evidence")] in options:
        return f" (did you mean {_q(word[: -len('Evidence')])}?)"
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {_q(close[0])}?)" if close else ""


class _Checker:
    def __init__(self, doc: Document, state: _SetState):
        self.doc = doc
        self.state = state
        self.findings: list[Finding] = []

    def add(
        self, code: str, message: str, path: JsonPath, *, key: bool = False,
        severity: Severity = "error",
    ) -> None:
        self.findings.append(Finding(severity, code, message, self.doc.locate(path, key=key)))

    # ---------------------------------------------------------- declarations
    def declarations(self, spec: dict[str, Any]) -> None:
        actions = spec.get("actions")
        for i, act in enumerate(actions if isinstance(actions, list) else []):
            if not isinstance(act, dict) or not isinstance(act.get("id"), str):
                continue
            path: JsonPath = ("spec", "actions", i)
            aid = act["id"]
            if aid in BUILTIN_ACTIONS:
                self.add("duplicate-action", f"custom action {_q(aid)} has the name of a built-in"
                         " action", path + ("id",))
            elif aid in self.state.custom_at:
                first = _where(self.state.custom_at[aid])
                self.add("duplicate-action", f"custom action {_q(aid)} is already declared at"
                         f" {first}", path + ("id",))
            else:
                self.state.custom_at[aid] = self.doc.locate(path + ("id",))
            targets = act.get("targets")
            names = set()
            if isinstance(targets, list):
                names = {t for t in targets if isinstance(t, str)}
            self.state.actions.setdefault(aid, frozenset(names))
            self.state.entity_types |= names
            if "approver_role" in act:
                self.role(act["approver_role"], path + ("approver_role",))
        if "automation" in spec:
            where = ("spec", "automation")
            if self.state.automation_at is None:
                self.state.automation_at = self.doc.locate(where, key=True)
            else:
                first = _where(self.state.automation_at)
                self.add("duplicate-automation", "a policy set has one automation block; the"
                         f" first is at {first}", where, key=True)

    # ---------------------------------------------------------- rules
    def rules(self, spec: dict[str, Any]) -> None:
        defaults = spec.get("defaults")
        if isinstance(defaults, dict) and "approval" in defaults:
            self.approval(defaults["approval"], ("spec", "defaults", "approval"))
        rules = spec.get("rules")
        for i, rule in enumerate(rules if isinstance(rules, list) else []):
            if isinstance(rule, dict):
                self.rule(rule, ("spec", "rules", i))

    def rule(self, rule: dict[str, Any], path: JsonPath) -> None:
        rid = rule.get("id")
        name = repr(rid) if isinstance(rid, str) else "without an id"
        if isinstance(rid, str):
            if rid in self.state.rule_at:
                first = _where(self.state.rule_at[rid])
                self.add("duplicate-rule-id", f"rule id {_q(rid)} is already used at {first}",
                         path + ("id",))
            else:
                self.state.rule_at[rid] = self.doc.locate(path + ("id",))
        match = rule.get("match")
        entities: list[str] = []
        if isinstance(match, dict):
            self.verdicts(match.get("verdict"), path + ("match", "verdict"))
            entities = self.entities(match.get("entity"), path + ("match", "entity"))
            if "where" in match:
                self.where(match["where"], path + ("match", "where"))
        effect = rule.get("effect")
        if effect == "exclude":
            if "action" in rule:
                self.add("conflicting-effect", f"rule {name} has both an action and effect:"
                         " exclude; an exclusion names the actions it suppresses in 'actions'",
                         path + ("action",), key=True)
            self.exclusion(rule, path, name)
        elif "action" in rule:
            self.action_rule(rule, path, entities)
        elif effect in (None, "action"):
            self.add("no-effect", f"rule {name} has no effect: give it an 'action' or"
                     " 'effect: exclude'", path)

    def action_rule(self, rule: dict[str, Any], path: JsonPath, entities: list[str]) -> None:
        action = rule["action"]
        if isinstance(action, str):
            targets = self.action_targets(action, path + ("action",))
            if targets is not None:
                for i, entity in self._entity_items(rule):
                    if entity in self.state.entity_types and entity not in targets:
                        self.add("action-target", f"action {_q(action)} cannot target entity type"
                                 f" {_q(entity)} (it targets: {', '.join(sorted(targets))})",
                                 path + ("match", "entity") + i)
        if "approval" in rule:
            self.approval(rule["approval"], path + ("approval",))
        if "revert_after" in rule:
            self.duration(rule["revert_after"], path + ("revert_after",))
        for key in _EXCLUDE_ONLY:
            if key in rule:
                self.add("ignored-field", f"{key!r} only applies to exclusion rules (effect:"
                         " exclude)", path + (key,), key=True, severity="warning")

    @staticmethod
    def _entity_items(rule: dict[str, Any]) -> list[tuple[tuple[int, ...], str]]:
        match = rule.get("match")
        raw = match.get("entity") if isinstance(match, dict) else None
        if isinstance(raw, str):
            return [((), raw)]
        if isinstance(raw, list):
            return [((i,), e) for i, e in enumerate(raw) if isinstance(e, str)]
        return []

    def exclusion(self, rule: dict[str, Any], path: JsonPath, name: str) -> None:
        if "reason" not in rule:
            self.add("missing-reason", f"exclusion {name} needs a 'reason'", path)
        actions = rule.get("actions")
        for i, action in enumerate(actions if isinstance(actions, list) else []):
            if isinstance(action, str):
                self.action_targets(action, path + ("actions", i))
        if "expires" in rule:
            self.expires(rule["expires"], path + ("expires",), name)
        for key in _ACTION_ONLY:
            if key in rule:
                self.add("ignored-field", f"{key!r} has no effect on an exclusion rule",
                         path + (key,), key=True, severity="warning")

    def action_targets(self, action: str, path: JsonPath) -> frozenset[str] | None:
        if action in BUILTIN_ACTIONS:
            return BUILTIN_ACTIONS[action].targets
        if action in self.state.actions:
            return self.state.actions[action]
        known = list(BUILTIN_ACTIONS) + list(self.state.actions)
        self.add("unknown-action", f"unknown action {_q(action)}{_suggest(action, known)}", path)
        return None

    def expires(self, value: Any, path: JsonPath, name: str) -> None:
        try:
            day = dt.date.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            day = None
        if day is None or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", str(value)):
            self.add("bad-date", f"{_q(value)} is not a date: write YYYY-MM-DD, like 2030-12-31",
                     path)
        elif day < self.state.today:
            self.add("expired-exclusion", f"exclusion {name} expired on {day.isoformat()}; it no"
                     " longer applies", path, severity="warning")

    # ---------------------------------------------------------- match
    def verdicts(self, raw: Any, path: JsonPath) -> None:
        for sub, value in _items(raw):
            if isinstance(value, str) and normalize_verdict(value) is None:
                close = difflib.get_close_matches(value.lower(), _VERDICT_SPELLINGS, n=1)
                hint = (f"did you mean {_q(normalize_verdict(close[0]))}? " if close else "")
                self.add("unknown-verdict", f"unknown verdict {_q(value)} ({hint}expected one"
                         f" of: {_VERDICT_NAMES})", path + sub)

    def entities(self, raw: Any, path: JsonPath) -> list[str]:
        out = []
        for sub, value in _items(raw):
            if not isinstance(value, str):
                continue
            out.append(value)
            if value not in self.state.entity_types:
                hint = _suggest(value, self.state.entity_types)
                self.add("unknown-entity", f"unknown entity type {_q(value)}{hint}", path + sub)
        return out

    def where(self, raw: Any, path: JsonPath) -> None:
        if isinstance(raw, list):
            for i, item in enumerate(raw):
                self.where(item, path + (i,))
            return
        if not isinstance(raw, dict):
            return
        kinds = [k for k in raw if k in OPERATORS or k in _FIELDLESS]
        if not kinds:
            self.add("bad-condition", "condition has no operator (use one of: "
                     f"{', '.join(OPERATORS + _FIELDLESS)})", path)
            return
        if len(kinds) > 1:
            self.add("bad-condition", f"condition has several operators ({', '.join(kinds)});"
                     " write one per condition and combine them with all/any",
                     path + (kinds[1],), key=True)
            return
        op = kinds[0]
        if op in _FIELDLESS:
            if "field" in raw:
                self.add("bad-condition", f"{op!r} combines conditions and takes no 'field'",
                         path + ("field",), key=True)
            items = raw[op]
            if op == "not":
                self.where(items, path + ("not",))
            else:
                for i, item in enumerate(items if isinstance(items, list) else []):
                    self.where(item, path + (op, i))
            return
        if "field" not in raw:
            self.add("bad-condition", f"operator {op!r} needs a 'field' to test", path + (op,),
                     key=True)
        self.operand(op, raw[op], path + (op,))

    def operand(self, op: str, value: Any, path: JsonPath) -> None:
        if op == "regex" and isinstance(value, str):
            try:
                re.compile(value)
            except re.error as exc:
                self.add("bad-regex", f"invalid regular expression {_q(value)}: {exc.msg}"
                         f" at position {exc.pos}", path)
        elif op == "glob" and isinstance(value, str):
            problem = glob_problem(value)
            if problem:
                self.add("bad-glob", f"invalid glob {_q(value)}: {problem}", path)
        elif op == "cidr":
            for sub, item in _items(value):
                if not isinstance(item, str):
                    continue
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError as exc:
                    self.add("bad-cidr", f"invalid CIDR {_q(item)}: {exc}", path + sub)

    # ---------------------------------------------------------- approval
    def approval(self, raw: Any, path: JsonPath) -> None:
        if not isinstance(raw, dict):
            return
        for key in ("expires_after", "dedup_window"):
            if key in raw:
                self.duration(raw[key], path + (key,))
        quorum = raw.get("quorum")
        if isinstance(quorum, int) and not isinstance(quorum, bool) and quorum < 1:
            self.add("bad-quorum", f"quorum must be at least 1, got {quorum}", path + ("quorum",))
        roles = raw.get("roles")
        for i, role in enumerate(roles if isinstance(roles, list) else []):
            self.role(role, path + ("roles", i))

    def role(self, role: Any, path: JsonPath) -> None:
        if isinstance(role, str) and role and role not in BUILTIN_ROLES:
            roles = ", ".join(BUILTIN_ROLES)
            self.add("unknown-role", f"role {_q(role)} is not built in ({roles}); define it in"
                     " the configuration", path, severity="warning")

    def duration(self, value: Any, path: JsonPath) -> None:
        try:
            parse_duration(value)
        except ValueError as exc:
            self.add("bad-duration", str(exc), path)


def _items(raw: Any) -> list[tuple[tuple[int, ...], Any]]:
    """A one-or-many value as (sub-path, item) pairs."""
    if isinstance(raw, list):
        return [((i,), v) for i, v in enumerate(raw)]
    if raw is None:
        return []
    return [((), raw)]


def glob_problem(pattern: str) -> str | None:
    """Why a glob pattern is invalid, or None. A '[' must open a closed set."""
    i = 0
    while i < len(pattern):
        if pattern[i] == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] == "!":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1  # a ']' first in a set is a literal member
            close = pattern.find("]", j)
            if close < 0:
                return f"'[' at position {i} is not closed"
            i = close
        i += 1
    return None


def check_documents(documents: list[Document], *, today: dt.date | None = None) -> list[Finding]:
    """Every finding of meaning across a set of documents."""
    state = _SetState(today=today or dt.date.today())
    checkers = [_Checker(doc, state) for doc in documents]
    specs = [_spec(doc) for doc in documents]
    # Declarations first: a rule may use a custom action declared in a later file.
    for checker, spec in zip(checkers, specs, strict=True):
        if spec is not None:
            checker.declarations(spec)
    for checker, spec in zip(checkers, specs, strict=True):
        if spec is not None:
            checker.rules(spec)
    return [f for c in checkers for f in c.findings]


def _spec(doc: Document) -> dict[str, Any] | None:
    if isinstance(doc.data, dict) and isinstance(doc.data.get("spec"), dict):
        spec: dict[str, Any] = doc.data["spec"]
        return spec
    return None


def sort_findings(findings: list[Finding], files: list[str]) -> list[Finding]:
    """Findings in file order (as discovered), then by line and column."""
    order = {f: i for i, f in enumerate(files)}

    def key(f: Finding) -> tuple[int, str, int, int]:
        loc = f.location
        return (order.get(loc.file, -1), loc.file, loc.line or 0, loc.column or 0)

    return sorted(findings, key=key)
