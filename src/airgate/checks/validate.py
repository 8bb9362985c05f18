"""``airgate validate``: the policy language's lint, and under ``--strict`` the static analysis.

Lint (``airgate.policy.lint``) needs only the documents; the static analysis
(``airgate.checks.analysis``: never-matches, shadowed, approval-conflict,
excludes-nothing) reasons with the engine's operators, so it lives here, above
the engine, and runs only when the set loaded without errors.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass

from airgate.checks import analysis
from airgate.errors import Finding
from airgate.policy import lint
from airgate.policy.loader import analyze_paths, build_policy_set

PathArg = str | os.PathLike[str]

# Every code a finding of validate may carry, with a one-line description (SARIF rules, docs).
CODES: dict[str, str] = {**lint.CODES, **analysis.CODES}


@dataclass(frozen=True)
class Validation:
    """The outcome of validating paths: the files read and what was found."""

    files: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == "warning")

    def failed(self, *, strict: bool = False) -> bool:
        return self.errors > 0 or (strict and self.warnings > 0)


def validate(
    paths: PathArg | Iterable[PathArg], *, strict: bool = False, today: dt.date | None = None
) -> Validation:
    """Validate policy files and directories; never raises for bad input."""
    found = analyze_paths(paths, today=today)
    findings = list(found.findings)
    if strict and not found.has_errors:
        findings.extend(analysis.check(build_policy_set(found.documents), today=today))
    return Validation(tuple(found.files), tuple(lint.sort_findings(findings, found.files)))


def validate_paths(
    paths: PathArg | Iterable[PathArg], *, strict: bool = False, today: dt.date | None = None
) -> list[Finding]:
    """Every finding (errors and warnings) for the policy files under ``paths``."""
    return list(validate(paths, strict=strict, today=today).findings)
