"""Policy test suites: the YAML format, read strictly into frozen records.

A suite (``kind: PolicyTest``, schemas/policy-test.schema.json) names a policy
file or directory and lists cases. Each case gives evidence, inline or as a file,
and either the decisions it must produce or ``expect_no_actions: true``. Paths
in a suite are relative to the suite file. :mod:`airgate.policytest` runs them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from airgate.errors import Finding, InputError, Location, PolicyLoadErrors
from airgate.model import Decision
from airgate.policy.tree import walk_tree
from airgate.policy.yamlsrc import Document, iter_documents, read_text

SUITE_SUFFIXES = (".yaml", ".yml")
# Cheap pre-filter while walking a directory: only files that say they are
# suites are parsed, so policies and other YAML beside them are left alone.
_SUITE_MARK = re.compile(r"^kind:\s*['\"]?PolicyTest\b", re.MULTILINE)


def printable(text: str) -> str:
    """``text`` with control characters, escapes and bidi overrides made visible."""
    from airgate.render import escape

    return escape(text)


def approval_mode(decision: Decision) -> str:
    return "required" if decision.approval.required else "auto"


@cache
def policy_test_schema() -> dict[str, Any]:
    """The policy test suite JSON Schema shipped inside the package."""
    text = resources.files("airgate").joinpath("schemas/policy-test.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


# ---------------------------------------------------------------- model
@dataclass(frozen=True)
class Expectation:
    """One expected decision; fields left as None match anything."""

    action: str
    entity_type: str | None = None
    entity_key: str | None = None
    entity_name: str | None = None
    investigation: str | None = None
    approval: str | None = None  # auto | required
    roles: frozenset[str] | None = None
    quorum: int | None = None
    rules: frozenset[str] = frozenset()
    excluded: bool = False
    suppressed_by: frozenset[str] = frozenset()
    location: Location = field(default_factory=Location, compare=False)

    def matches(self, decision: Decision) -> bool:
        """Whether ``decision`` is the one this expectation describes."""
        entity = decision.entity
        checks = (
            decision.action == self.action,
            self.entity_type is None or entity.type == self.entity_type,
            self.entity_key is None or entity.key == self.entity_key,
            self.entity_name is None or entity.name == self.entity_name,
            self.investigation is None or decision.investigation == self.investigation,
            self.approval is None or approval_mode(decision) == self.approval,
            self.roles is None or frozenset(decision.approval.roles) == self.roles,
            self.quorum is None or decision.approval.quorum == self.quorum,
            self.rules <= frozenset(decision.rules),
            decision.excluded == self.excluded,
            self.suppressed_by <= frozenset(decision.suppressed_by),
        )
        return all(checks)

    def describe(self) -> str:
        parts = [self.action]
        entity = [
            f"{k}={v!r}"
            for k, v in (("type", self.entity_type), ("key", self.entity_key),
                         ("name", self.entity_name))
            if v is not None
        ]
        if entity:
            parts.append("on " + " ".join(entity))
        if self.investigation is not None:
            parts.append(f"investigation={self.investigation!r}")
        if self.approval is not None:
            parts.append(f"approval={self.approval}")
        if self.roles is not None:
            parts.append("roles=" + ",".join(sorted(self.roles)))
        if self.quorum is not None:
            parts.append(f"quorum={self.quorum}")
        if self.rules:
            parts.append("rules⊇" + ",".join(sorted(self.rules)))
        if self.excluded:
            parts.append("excluded" + (
                " by " + ",".join(sorted(self.suppressed_by)) if self.suppressed_by else ""))
        return printable(" ".join(parts))


@dataclass(frozen=True)
class Case:
    name: str
    expect: tuple[Expectation, ...]
    expect_no_actions: bool = False
    allow_other_decisions: bool = False
    evidence: Any = None  # inline evidence object
    evidence_file: str | None = None  # resolved against the suite's folder
    today: dt.date | None = None
    description: str = ""
    location: Location = field(default_factory=Location, compare=False)


@dataclass(frozen=True)
class Suite:
    file: str
    name: str
    policy: tuple[str, ...]  # files and directories, resolved against the suite's folder
    cases: tuple[Case, ...]
    today: dt.date | None = None
    description: str = ""
    location: Location = field(default_factory=Location, compare=False)


# ---------------------------------------------------------------- loading
def discover_suites(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Suite files under ``paths``: named files as given, directories searched recursively."""
    out: list[str] = []
    seen: set[str] = set()
    for given in (os.fspath(p) for p in paths):
        if os.path.isdir(given):
            candidates = [f for f in _walk(given) if _looks_like_suite(f)]
        elif os.path.exists(given):
            candidates = [given]
        else:
            raise InputError("no such file or directory", Location(given), code="not-found")
        for file in candidates:
            real = os.path.realpath(file)
            if real not in seen:
                seen.add(real)
                out.append(file)
    return out


def _walk(top: str) -> list[str]:
    # The policy walk (links followed, anything unreadable an error): a suite that
    # vanished silently would leave its policy untested and `airgate test` green.
    tree = walk_tree(top, SUITE_SUFFIXES)
    if tree.findings:
        raise PolicyLoadErrors(tree.findings)
    return tree.files


def _looks_like_suite(file: str) -> bool:
    try:
        with open(file, encoding="utf-8", errors="replace") as handle:
            return bool(_SUITE_MARK.search(handle.read(64 * 1024)))
    except OSError:
        return True  # let loading report why it cannot be read


def load_suites(paths: Sequence[str | os.PathLike[str]]) -> list[Suite]:
    """Parse and check every suite under ``paths``.

    Raises :class:`airgate.errors.PolicyLoadErrors` with every finding, each
    located at its YAML node (file:line:col).
    """
    from airgate.policy.schemacheck import schema_findings

    findings: list[Finding] = []
    suites: list[Suite] = []
    for file in discover_suites(paths):
        try:
            docs = list(iter_documents(read_text(file, what="test suite"), file))
        except InputError as exc:
            loc = exc.location or Location(file)
            findings.append(Finding("error", exc.code, exc.message, loc))
            continue
        for doc in docs:
            errors = schema_findings(doc, policy_test_schema())
            if not errors:
                errors = _meaning_findings(doc)
            findings.extend(errors)
            if not errors:
                suites.append(_suite(doc))
    if findings:
        raise PolicyLoadErrors(findings)
    return suites


def _meaning_findings(doc: Document) -> list[Finding]:
    """What the schema cannot say clearly: one evidence source, one kind of expectation, dates."""
    spec = doc.data["spec"]
    out = []
    dated: list[tuple[tuple[str | int, ...], str]] = []
    if "today" in spec:
        dated.append((("spec", "today"), spec["today"]))
    for i, case in enumerate(spec["cases"]):
        path: tuple[str | int, ...] = ("spec", "cases", i)
        if "today" in case:
            dated.append((path + ("today",), case["today"]))
        sources = [k for k in ("evidence", "evidence_file") if k in case]
        if len(sources) != 1:
            problem = "takes evidence or evidence_file, not both" if sources else (
                "needs evidence (inline) or evidence_file")
            out.append(Finding("error", "bad-case", f"case {case['name']!r} {problem}",
                               doc.locate(path + (sources[-1],) if sources else path)))
        expects = "expect" in case, bool(case.get("expect_no_actions"))
        if expects == (False, False):
            out.append(Finding(
                "error", "bad-case",
                f"case {case['name']!r} needs expect (a list) or expect_no_actions: true",
                doc.locate(path)))
        elif expects == (True, True):
            out.append(Finding(
                "error", "bad-case",
                f"case {case['name']!r} takes expect or expect_no_actions, not both",
                doc.locate(path + ("expect_no_actions",))))
    for where, text in dated:
        if _date(text) is None:
            out.append(Finding("error", "bad-date", f"{text!r} is not a date (YYYY-MM-DD)",
                               doc.locate(where)))
    return out


def _date(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _suite(doc: Document) -> Suite:
    data = doc.data
    base = os.path.dirname(doc.file)
    spec = data["spec"]
    cases = tuple(
        _case(doc, base, ("spec", "cases", i), raw) for i, raw in enumerate(spec["cases"])
    )
    return Suite(
        file=doc.file,
        name=data["metadata"]["name"],
        policy=tuple(
            os.path.normpath(os.path.join(base, p))
            for p in ([spec["policy"]] if isinstance(spec["policy"], str) else spec["policy"])
        ),
        cases=cases,
        today=_date(spec.get("today")),
        description=data["metadata"].get("description", ""),
        location=doc.locate(()),
    )


def _case(doc: Document, base: str, path: tuple[str | int, ...], raw: dict[str, Any]) -> Case:
    expect = tuple(
        _expectation(doc.locate(path + ("expect", i)), e)
        for i, e in enumerate(raw.get("expect", []))
    )
    file = raw.get("evidence_file")
    return Case(
        name=raw["name"],
        expect=expect,
        expect_no_actions=raw.get("expect_no_actions", False),
        allow_other_decisions=raw.get("allow_other_decisions", False),
        evidence=raw.get("evidence"),
        evidence_file=os.path.normpath(os.path.join(base, file)) if file else None,
        today=_date(raw.get("today")),
        description=raw.get("description", ""),
        location=doc.locate(path),
    )


def _expectation(location: Location, raw: dict[str, Any]) -> Expectation:
    entity = raw.get("entity", {})
    suppressed = frozenset(raw.get("suppressed_by", ()))
    return Expectation(
        action=raw["action"],
        entity_type=entity.get("type"),
        entity_key=entity.get("key"),
        entity_name=entity.get("name"),
        investigation=raw.get("investigation"),
        approval=raw.get("approval"),
        roles=frozenset(raw["roles"]) if "roles" in raw else None,
        quorum=raw.get("quorum"),
        rules=frozenset(raw.get("rules", ())),
        excluded=raw.get("excluded", bool(suppressed)),
        suppressed_by=suppressed,
        location=location,
    )


__all__ = [
    "Case", "Expectation", "Suite", "approval_mode", "discover_suites", "load_suites",
    "policy_test_schema", "printable",
]
