"""Load policy sets: find the files, parse them strictly, check them, build the model.

Loading is "collect everything": every file and document is parsed and checked
even after an error, so ``airgate validate`` reports all findings at once.
``load_policy_set`` then raises if any finding is an error; otherwise it returns
the frozen model of :mod:`airgate.model`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from airgate.catalog import DEFAULT_APPROVER, DEFAULT_CATALOG, ActionSpec, Catalog, Undo
from airgate.errors import Finding, InputError, Location, PolicyLoadErrors
from airgate.model import (
    AUTO,
    AllOf,
    AnyOf,
    Approval,
    Automation,
    Condition,
    Node,
    NotOf,
    Policy,
    PolicySet,
    Rule,
    normalize_verdict,
)
from airgate.policy import lint
from airgate.policy.durations import parse_duration
from airgate.policy.schemacheck import schema_findings
from airgate.policy.tree import walk_tree
from airgate.policy.yamlsrc import MAX_FILE_BYTES, Document, iter_documents, read_text
from airgate.policy.yamlsrc import decode as _decode

PathArg = str | os.PathLike[str]
POLICY_SUFFIXES = (".yaml", ".yml")


@dataclass
class Analysis:
    """What loading a set of paths found: the files, their documents, and the findings."""

    files: list[str] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)


@cache
def policy_schema() -> dict[str, Any]:
    """The policy JSON Schema shipped inside the package."""
    text = resources.files("airgate").joinpath("schemas/policy.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


# ---------------------------------------------------------------- public API
def load_policy_set(
    paths: PathArg | Iterable[PathArg], *, today: dt.date | None = None
) -> PolicySet:
    """Load a policy set from files and directories (searched recursively for *.yaml, *.yml).

    Raises :class:`airgate.errors.PolicyLoadErrors` holding every error finding.
    Warnings (such as an expired exclusion) do not stop loading.
    """
    analysis = analyze_paths(paths, today=today)
    return _result(analysis)


def load_policy_text(text: str, file: str = "<input>") -> PolicySet:
    """Load a policy set from YAML text (one or more documents)."""
    analysis = Analysis(files=[file])
    try:
        raw = text.encode("utf-8")
        if len(raw) > MAX_FILE_BYTES:
            raise InputError(
                f"policy text is {len(raw)} bytes, above the limit of {MAX_FILE_BYTES} bytes",
                Location(file, 1, 1),
                code="too-large",
            )
        _decode(raw, file, what="policy text")
        _parse_into(analysis, text, file)
    except InputError as exc:
        analysis.findings.append(_input_finding(exc, file))
    _check(analysis, today=None)
    return _result(analysis)


def analyze_paths(
    paths: PathArg | Iterable[PathArg], *, today: dt.date | None = None
) -> Analysis:
    """Parse and check every policy file under ``paths``; never raises for bad input."""
    analysis = Analysis()
    for file in _discover(paths, analysis.findings):
        analysis.files.append(file)
        try:
            text = read_text(file, what="policy file")
            _parse_into(analysis, text, file)
        except InputError as exc:
            analysis.findings.append(_input_finding(exc, file))
    _check(analysis, today=today)
    return analysis


def build_policy_set(documents: list[Document]) -> PolicySet:
    """Build the model from documents that passed every check (no error findings)."""
    customs = [
        _custom_action(a)
        for doc in documents
        for a in doc.data.get("spec", {}).get("actions", [])
    ]
    catalog = DEFAULT_CATALOG.with_custom(customs) if customs else DEFAULT_CATALOG
    policies = tuple(_policy(doc) for doc in documents)
    automation = next((p.automation for p in policies if p.automation is not None), None)
    return PolicySet(policies=policies, catalog=catalog, automation=automation)


# ---------------------------------------------------------------- discovery
def _as_list(paths: PathArg | Iterable[PathArg]) -> list[str]:
    if isinstance(paths, str | os.PathLike):
        return [os.fspath(paths)]
    return [os.fspath(p) for p in paths]


def _discover(paths: PathArg | Iterable[PathArg], findings: list[Finding]) -> list[str]:
    """Policy files under ``paths`` in a stable order, each once, named as the user wrote it."""
    seen: set[str] = set()
    out: list[str] = []

    def add(file: str) -> None:
        key = os.path.realpath(file)
        if key not in seen:
            seen.add(key)
            out.append(file)

    for given in _as_list(paths):
        if os.path.isdir(given):
            before = len(findings)
            found = _walk(given, findings)
            if not found and len(findings) == before:
                findings.append(
                    Finding(
                        "error",
                        "no-policy",
                        "directory holds no *.yaml or *.yml file",
                        Location(given),
                    )
                )
            for file in found:
                add(file)
        elif os.path.exists(given):
            add(given)
        else:
            findings.append(
                Finding("error", "not-found", "no such file or directory", Location(given))
            )
    return out


def _walk(top: str, findings: list[Finding]) -> list[str]:
    # Links are followed and whatever cannot be read is an error finding
    # (airgate.policy.tree): a policy file that vanishes silently takes its rules,
    # exclusions among them, with it.
    tree = walk_tree(top, POLICY_SUFFIXES)
    findings.extend(tree.findings)
    return tree.files


# ---------------------------------------------------------------- parsing
def _input_finding(exc: InputError, file: str) -> Finding:
    loc = exc.location or Location(file)
    if loc.line is None and not os.path.isdir(loc.file):
        loc = Location(loc.file, 1, 1, loc.path)
    return Finding("error", exc.code, exc.message, loc)


def _parse_into(analysis: Analysis, text: str, file: str) -> None:
    policies = others = 0
    for doc in iter_documents(text, file):
        if _other_kind(doc.data):
            others += 1
        else:
            policies += 1
            analysis.documents.append(doc)
    if policies == 0 and others > 0:
        # Policy tests and config files live beside policies; other commands read them.
        analysis.files.remove(file)
    elif policies == 0:
        analysis.findings.append(
            Finding("error", "no-policy", "file holds no Policy document", Location(file, 1, 1))
        )


# Other airgate documents that may share a directory with policies.
OTHER_KINDS = frozenset({"PolicyTest", "Config", "Investigation"})


def _other_kind(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and data.get("apiVersion") == "airgate/v1"
        and data.get("kind") in OTHER_KINDS
    )


def _check(analysis: Analysis, *, today: dt.date | None) -> None:
    for doc in analysis.documents:
        analysis.findings.extend(schema_findings(doc, policy_schema()))
    analysis.findings.extend(lint.check_documents(analysis.documents, today=today))


def _result(analysis: Analysis) -> PolicySet:
    errors = [f for f in analysis.findings if f.severity == "error"]
    if errors:
        raise PolicyLoadErrors(lint.sort_findings(errors, analysis.files))
    return build_policy_set(analysis.documents)


# ---------------------------------------------------------------- building
def _custom_action(data: Mapping[str, Any]) -> ActionSpec:
    category = data.get("category", "custom")
    undoable = data.get("undoable", "undo_action" in data)
    undo = None
    if undoable:
        undo_id = data.get("undo_action", f"undo_{data['id']}")
        undo = Undo(undo_id, undo_id.replace("_", " ").capitalize())
    return ActionSpec(
        id=data["id"],
        display_name=data.get("display_name", data["id"].replace("_", " ").capitalize()),
        category=category,
        targets=frozenset(data["targets"]),
        undo=undo,
        approver_role=data.get("approver_role", DEFAULT_APPROVER[category]),
        custom=True,
        description=data.get("description", ""),
    )


def _policy(doc: Document) -> Policy:
    data = doc.data
    name = data["metadata"]["name"]
    spec = data.get("spec", {})
    default = Approval()
    if "defaults" in spec and "approval" in spec["defaults"]:
        default = approval_from(spec["defaults"]["approval"], Approval())
    rules = tuple(
        _rule(doc, name, ("spec", "rules", i), raw, default)
        for i, raw in enumerate(spec.get("rules", []))
    )
    automation = None
    if "automation" in spec:
        auto = spec["automation"]
        automation = Automation(
            default_level=auto.get("default_group", "full"),
            groups=MappingProxyType(dict(auto.get("groups", {}))),
            location=doc.locate(("spec", "automation"), key=True),
        )
    return Policy(
        name=name,
        description=data["metadata"].get("description", ""),
        rules=rules,
        file=doc.file,
        automation=automation,
    )


def approval_from(raw: Any, base: Approval) -> Approval:
    """The approval a policy value means: 'auto', 'required', or an object over ``base``.

    An object asks for approval unless it says ``required: false``, whatever the base.
    """
    if raw == "auto":
        return AUTO
    if raw == "required":
        return Approval()
    return Approval(
        required=raw.get("required", True),
        roles=tuple(raw["roles"]) if "roles" in raw else base.roles,
        quorum=raw.get("quorum", base.quorum),
        expires_after=parse_duration(raw["expires_after"])
        if "expires_after" in raw
        else base.expires_after,
        require_comment=raw.get("require_comment", base.require_comment),
        dedup_window=parse_duration(raw["dedup_window"])
        if "dedup_window" in raw
        else base.dedup_window,
    )


def _one_or_many(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _rule(
    doc: Document, policy: str, path: tuple[str | int, ...], raw: Mapping[str, Any],
    default: Approval,
) -> Rule:
    match = raw.get("match", {})
    verdicts = frozenset(normalize_verdict(v) or v for v in _one_or_many(match.get("verdict")))
    entities = frozenset(_one_or_many(match.get("entity")))
    where = None
    if "where" in match:
        where = _node(doc, path + ("match", "where"), match["where"])
    common: dict[str, Any] = {
        "id": raw["id"],
        "policy": policy,
        "verdicts": verdicts,
        "entity_types": entities,
        "where": where,
        "description": raw.get("description", ""),
        "location": doc.locate(path),
    }
    if raw.get("effect") == "exclude":
        expires = dt.date.fromisoformat(raw["expires"]) if "expires" in raw else None
        return Rule(
            effect="exclude",
            reason=raw["reason"],
            excluded_actions=frozenset(raw.get("actions", [])),
            expires=expires,
            **common,
        )
    approval = approval_from(raw["approval"], default) if "approval" in raw else default
    return Rule(
        effect="action",
        action=raw["action"],
        approval=approval,
        revert_after=parse_duration(raw["revert_after"]) if "revert_after" in raw else None,
        max_automatic_per_hour=raw.get("max_automatic_per_hour"),
        **common,
    )


_COMBINATORS = ("all", "any", "not")


def _node(doc: Document, path: tuple[str | int, ...], raw: Any) -> Node:
    loc = doc.locate(path)
    if isinstance(raw, list):
        return AllOf(tuple(_node(doc, path + (i,), c) for i, c in enumerate(raw)), loc)
    if "all" in raw:
        return AllOf(tuple(_node(doc, path + ("all", i), c) for i, c in enumerate(raw["all"])), loc)
    if "any" in raw:
        return AnyOf(tuple(_node(doc, path + ("any", i), c) for i, c in enumerate(raw["any"])), loc)
    if "not" in raw:
        return NotOf(_node(doc, path + ("not",), raw["not"]), loc)
    op = next(k for k in raw if k != "field")
    value = raw[op]
    # Lists become tuples so that conditions stay hashable; cidr is always a tuple.
    if op == "cidr":
        value = tuple(_one_or_many(value))
    elif isinstance(value, list):
        value = tuple(value)
    return Condition(raw["field"], op, value, loc)


__all__ = [
    "Analysis", "Catalog", "analyze_paths", "approval_from", "build_policy_set",
    "load_policy_set", "load_policy_text", "policy_schema",
]
