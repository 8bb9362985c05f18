"""One error hierarchy for airgate, each error carrying where it happened."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]

# Exit codes: one place owns them.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def format_json_path(path: tuple[str | int, ...]) -> str:
    """Render a path into a document as JSONPath: ``$.spec.rules[0].match``."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier():
            out += f".{part}"
        else:
            out += "[" + _quote(part) + "]"
    return out


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Location:
    """Where something is: a file, a 1-based line and column, a path inside the document."""

    file: str = "<input>"
    line: int | None = None
    column: int | None = None
    path: tuple[str | int, ...] = ()

    @property
    def json_path(self) -> str:
        return format_json_path(self.path)

    def __str__(self) -> str:
        text = self.file
        if self.line is not None:
            text += f":{self.line}"
            if self.column is not None:
                text += f":{self.column}"
        return text


@dataclass(frozen=True)
class Finding:
    """A lint finding: a value, not an exception."""

    severity: Severity
    code: str
    message: str
    location: Location = field(default_factory=Location)

    def __str__(self) -> str:
        return f"{self.location}: {self.severity}: {self.code}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
            "json_path": self.location.json_path,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
        }


class AirgateError(Exception):
    """Base of every error airgate raises on purpose. Renders itself; owns its exit code."""

    exit_code = EXIT_FAILED
    code = "error"

    def __init__(self, message: str, location: Location | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.location = location
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        if self.location is None:
            return self.message
        return f"{self.location}: {self.message}"

    def as_finding(self) -> Finding:
        return Finding("error", self.code, self.message, self.location or Location())


class InputError(AirgateError):
    """A file the user gave us is unreadable, malformed or hostile."""

    code = "input"


class PolicyError(AirgateError):
    """A policy that cannot be loaded at all (lint findings are values instead)."""

    code = "policy"


class EvidenceError(AirgateError):
    """Evidence that cannot be read."""

    code = "evidence"


class StoreError(AirgateError):
    """The store is locked, damaged or from a newer airgate."""

    code = "store"


class TransitionError(AirgateError):
    """An action cannot move to the requested state."""

    code = "transition"


class PermissionDenied(AirgateError):
    """The actor lacks a role or right for what they asked."""

    code = "permission"


class Unauthenticated(AirgateError):
    """No credential, or one that is unknown, expired or revoked (HTTP 401)."""

    code = "unauthenticated"


class NotFound(AirgateError):
    code = "not-found"


class UsageError(AirgateError):
    exit_code = EXIT_USAGE
    code = "usage"


class PolicyLoadErrors(PolicyError):
    """Several findings with severity error, collected while loading a policy set."""

    def __init__(self, findings: list[Finding]):
        self.findings = findings
        first = findings[0]
        more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        super().__init__(first.message + more, first.location, first.code)
