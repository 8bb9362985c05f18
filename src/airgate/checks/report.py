"""Render lint findings for people and machines: text, JSON, GitHub annotations, SARIF 2.1.0."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from airgate.errors import Finding
from airgate.render import escape_keeping_line_ends

FORMATS = ("text", "json", "github", "sarif")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _clean(text: str) -> str:
    """One line, no control characters: a finding may quote attacker-chosen text."""
    out = []
    for ch in text:
        if ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 32 or 127 <= ord(ch) < 160:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def summary(findings: Sequence[Finding], files: int | None = None) -> str:
    """One line: how many files, errors and warnings."""
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    head = f"{_plural(files, 'file')} checked: " if files is not None else ""
    return f"{head}{_plural(errors, 'error')}, {_plural(warnings, 'warning')}"


def render_text(findings: Sequence[Finding]) -> str:
    """``FILE:LINE:COLUMN: severity: CODE: message``, one finding per line."""
    return "".join(_clean(str(f)) + "\n" for f in findings)


def render_json(findings: Sequence[Finding], files: int | None = None) -> str:
    errors = sum(1 for f in findings if f.severity == "error")
    doc = {
        "findings": [f.as_dict() for f in findings],
        "summary": {
            "files": files,
            "errors": errors,
            "warnings": len(findings) - errors,
        },
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _escape_data(text: str) -> str:
    # GitHub decodes %0A into a line break of the annotation; any other control
    # character (from a policy file: attacker-reachable through a pull request) would
    # reach the log viewer as it is, so it is shown as an escape instead.
    text = escape_keeping_line_ends(text)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(findings: Sequence[Finding]) -> str:
    """GitHub Actions workflow commands: ``::error file=F,line=L,col=C,title=CODE::message``."""
    lines = []
    for f in findings:
        props = [f"file={_escape_property(f.location.file)}"]
        if f.location.line is not None:
            props.append(f"line={f.location.line}")
            if f.location.column is not None:
                props.append(f"col={f.location.column}")
        props.append(f"title={_escape_property(f.code)}")
        lines.append(f"::{f.severity} {','.join(props)}::{_escape_data(f.message)}\n")
    return "".join(lines)


def _uri(file: str) -> str:
    return quote(file.replace("\\", "/"), safe="/")


def sarif_log(
    findings: Sequence[Finding], descriptions: dict[str, str] | None = None,
    version: str = "0",
) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run of the ``airgate`` tool."""
    descriptions = descriptions or {}
    codes = sorted({f.code for f in findings})
    index = {code: i for i, code in enumerate(codes)}
    worst = {
        code: "error" if any(f.severity == "error" for f in findings if f.code == code)
        else "warning"
        for code in codes
    }
    rules = [
        {
            "id": code,
            "name": "".join(part.capitalize() for part in code.split("-")),
            "shortDescription": {"text": descriptions.get(code, code)},
            "defaultConfiguration": {"level": worst[code]},
        }
        for code in codes
    ]
    results = []
    for f in findings:
        physical: dict[str, Any] = {
            "artifactLocation": {"uri": _uri(f.location.file), "uriBaseId": "%SRCROOT%"}
        }
        if f.location.line is not None:
            region: dict[str, int] = {"startLine": f.location.line}
            if f.location.column is not None:
                region["startColumn"] = f.location.column
            physical["region"] = region
        results.append(
            {
                "ruleId": f.code,
                "ruleIndex": index[f.code],
                "level": f.severity,
                "message": {"text": f.message},
                "locations": [{"physicalLocation": physical}],
            }
        )
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "airgate",
                        "version": version,
                        "rules": rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def render_sarif(
    findings: Sequence[Finding], descriptions: dict[str, str] | None = None, version: str = "0"
) -> str:
    return json.dumps(sarif_log(findings, descriptions, version), indent=2) + "\n"
