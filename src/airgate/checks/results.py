"""Render the results of policy tests: text for people, JSON and JUnit XML for CI.

Entity names and keys come from evidence, which is attacker-controlled: text
output escapes control characters, and XML output drops the characters XML 1.0
cannot hold before the XML writer escapes the rest.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from airgate.catalog import Catalog
from airgate.checks.runner import CaseResult, RunResult, describe_decision
from airgate.checks.suites import printable
from airgate.model import Decision


def case_failure_lines(result: CaseResult) -> list[str]:
    """Expected against actual, one item per line, for a failed case."""
    lines: list[str] = []
    for problem in result.problems:
        lines.extend(problem.splitlines())
    if result.case.expect_no_actions and result.unexpected:
        lines.append("expected: no actions")
    elif result.missing or result.unexpected:
        lines.append("expected:")
        lines.extend(f"  - {e.describe()}" for e in result.case.expect)
        if not result.case.expect:
            lines.append("  (nothing)")
    if result.missing:
        lines.append("not produced:")
        lines.extend(f"  - {e.describe()}" for e in result.missing)
    if result.unexpected:
        lines.append("unexpected:")
        lines.extend(f"  - {describe_decision(d)}" for d in result.unexpected)
    if result.missing or result.unexpected:
        lines.append("actual:")
        lines.extend(f"  - {describe_decision(d)}" for d in result.decisions)
        if not result.decisions:
            lines.append("  (no decisions)")
    return lines


def _case_id(result: CaseResult) -> str:
    return printable(f"{result.suite.file}::{result.case.name}")


def render_text(run: RunResult, *, verbose: bool = False) -> str:
    """A line per failed case (per case with ``verbose``), the details, then a summary."""
    out: list[str] = []
    for result in run.results:
        if result.passed:
            if verbose:
                out.append(f"PASS {_case_id(result)}")
            continue
        out.append(f"FAIL {_case_id(result)} ({result.case.location})")
        out.extend(f"    {line}" for line in case_failure_lines(result))
    total, failed = len(run.results), len(run.failed)
    out.append(
        f"{total - failed} passed, {failed} failed, {total} case{'s' if total != 1 else ''}"
        f" (engine{'s' if len(run.engines) > 1 else ''}: {', '.join(run.engines)})"
    )
    out.extend(coverage_lines(run))
    return "\n".join(out) + "\n"


def coverage_lines(run: RunResult) -> list[str]:
    cov = run.coverage
    lines = [f"rule coverage: {len(cov.exercised)}/{len(cov.rules)} ({cov.percent:.1f}%)"]
    if cov.uncovered:
        lines.append("uncovered rules:")
        lines.extend(f"  - {printable(r.id)} ({printable(r.file)})" for r in cov.uncovered)
    return lines


def _decision_json(decision: Decision, catalog: Catalog | None) -> dict[str, Any]:
    from airgate.engine.decision_json import decision_to_dict

    out: dict[str, Any] = decision_to_dict(decision, catalog)
    return out


def render_json(run: RunResult, *, min_coverage: float | None = None) -> str:
    """The whole run as one JSON document (stable keys; see docs/policy-tests.md)."""
    cov = run.coverage
    doc = {
        "passed": run.passed and coverage_ok(run, min_coverage),
        "engines": list(run.engines),
        "summary": {
            "cases": len(run.results),
            "passed": len(run.results) - len(run.failed),
            "failed": len(run.failed),
        },
        "coverage": {
            "rules": len(cov.rules),
            "exercised": len(cov.exercised),
            "percent": round(cov.percent, 2),
            "min_coverage": min_coverage,
            "uncovered": [{"file": r.file, "id": r.id} for r in cov.uncovered],
        },
        "cases": [
            {
                "suite": r.suite.name,
                "file": r.suite.file,
                "line": r.case.location.line,
                "name": r.case.name,
                "status": "passed" if r.passed else "failed",
                "problems": list(r.problems),
                "missing": [e.describe() for e in r.missing],
                "unexpected": [_decision_json(d, r.catalog) for d in r.unexpected],
                "decisions": [_decision_json(d, r.catalog) for d in r.decisions],
            }
            for r in run.results
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def coverage_ok(run: RunResult, min_coverage: float | None) -> bool:
    return min_coverage is None or run.coverage.percent + 1e-9 >= min_coverage


# XML 1.0 allows tab, newline, carriage return and most of the rest; not the
# other C0 controls, surrogates or U+FFFE/U+FFFF. ElementTree would write them
# as they are and produce a file no parser reads.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _XML_INVALID.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def render_junit(run: RunResult) -> str:
    """JUnit XML: a testsuite per suite file, a testcase per case, a failure per failed case."""
    root = ET.Element("testsuites", name="airgate", tests=str(len(run.results)),
                      failures=str(len(run.failed)), errors="0")
    suites: dict[tuple[str, str], ET.Element] = {}
    counts: dict[tuple[str, str], list[int]] = {}
    for result in run.results:
        key = (result.suite.file, result.suite.name)
        if key not in suites:
            suites[key] = ET.SubElement(root, "testsuite", name=_xml_text(result.suite.name),
                                        file=_xml_text(result.suite.file))
            counts[key] = [0, 0]
        counts[key][0] += 1
        case = ET.SubElement(
            suites[key], "testcase", name=_xml_text(result.case.name),
            classname=_xml_text(result.suite.name), file=_xml_text(result.suite.file),
            line=str(result.case.location.line or 0),
        )
        if not result.passed:
            counts[key][1] += 1
            detail = "\n".join(case_failure_lines(result))
            first = detail.splitlines()[0] if detail else "failed"
            failure = ET.SubElement(case, "failure", message=_xml_text(first), type="PolicyTest")
            failure.text = _xml_text(detail)
    for key, element in suites.items():
        element.set("tests", str(counts[key][0]))
        element.set("failures", str(counts[key][1]))
        element.set("errors", "0")
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


__all__ = [
    "case_failure_lines", "coverage_lines", "coverage_ok", "render_json", "render_junit",
    "render_text",
]
