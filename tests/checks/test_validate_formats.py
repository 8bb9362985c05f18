"""The four output formats of ``airgate validate``: text, json, github, sarif."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft4Validator

from airgate.checks.report import render_github, render_json, render_sarif, render_text, summary
from airgate.cli import main
from airgate.errors import Finding, Location
from helpers import DATA

INVALID = DATA / "policies" / "invalid"
# An excerpt of the official schema: see the $comment inside the file.
SARIF_SCHEMA = DATA / "sarif-schema-2.1.0.json"

# Two files, errors and warnings: bad-quorum.yaml (2 errors), ignored-field.yaml (3 warnings).
ARGS = ["bad-quorum.yaml", "ignored-field.yaml"]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["validate", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def _in_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(INVALID)


def expected_lines() -> list[str]:
    return [line for a in ARGS for line in (INVALID / a.replace(".yaml", ".expected"))
            .read_text().splitlines()]


def test_text() -> None:
    code, out, err = run(*ARGS)
    assert code == 1
    assert out.splitlines() == expected_lines()
    assert err == "2 files checked: 2 errors, 3 warnings\n"


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_machine_formats_write_nothing_to_stderr(fmt: str) -> None:
    code, out, err = run("--format", fmt, *ARGS)
    assert (code, err) == (1, "")
    json.loads(out)


def test_json() -> None:
    code, out, _ = run("--format", "json", *ARGS)
    doc = json.loads(out)
    assert code == 1
    assert doc["summary"] == {"files": 2, "errors": 2, "warnings": 3}
    assert doc["findings"][0] == {
        "file": "bad-quorum.yaml",
        "line": 7,
        "column": 24,
        "json_path": "$.spec.defaults.approval.quorum",
        "severity": "error",
        "code": "bad-quorum",
        "message": "quorum must be at least 1, got 0",
    }
    rendered = [
        f"{f['file']}:{f['line']}:{f['column']}: {f['severity']}: {f['code']}: {f['message']}"
        for f in doc["findings"]
    ]
    assert rendered == expected_lines()


def test_github() -> None:
    code, out, err = run("--format", "github", *ARGS)
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == (
        "::error file=bad-quorum.yaml,line=7,col=24,title=bad-quorum::"
        "quorum must be at least 1, got 0"
    )
    assert lines[2] == (
        "::warning file=ignored-field.yaml,line=11,col=7,title=ignored-field::"
        "'approval' has no effect on an exclusion rule"
    )
    assert len(lines) == 5
    assert err == "2 files checked: 2 errors, 3 warnings\n"


def test_github_escaping() -> None:
    finding = Finding(
        "error", "x,y:z", "100% bad\r\nnext line",
        Location("dir,with:odd%name.yaml", 3, 4),
    )
    assert render_github([finding]) == (
        "::error file=dir%2Cwith%3Aodd%25name.yaml,line=3,col=4,title=x%2Cy%3Az::"
        "100%25 bad%0D%0Anext line\n"
    )


def test_file_level_findings_have_no_position_where_none_exists() -> None:
    finding = Finding("error", "no-policy", "directory holds no *.yaml or *.yml file",
                      Location("empty-dir"))
    assert render_text([finding]) == (
        "empty-dir: error: no-policy: directory holds no *.yaml or *.yml file\n"
    )
    assert render_github([finding]) == (
        "::error file=empty-dir,title=no-policy::directory holds no *.yaml or *.yml file\n"
    )
    result = json.loads(render_sarif([finding]))["runs"][0]["results"][0]
    assert "region" not in result["locations"][0]["physicalLocation"]


def test_text_escapes_control_characters() -> None:
    finding = Finding("error", "c", "bad \x1b[31mred\x1b[0m\nsecond", Location("f.yaml", 1, 1))
    assert render_text([finding]) == "f.yaml:1:1: error: c: bad \\x1b[31mred\\x1b[0m\\nsecond\n"


@pytest.mark.parametrize(
    ("findings", "files", "expected"),
    [
        ([], 1, "1 file checked: 0 errors, 0 warnings"),
        ([Finding("error", "a", "m")], 3, "3 files checked: 1 error, 0 warnings"),
        ([Finding("warning", "a", "m")] * 2, None, "0 errors, 2 warnings"),
    ],
)
def test_summary(findings: list[Finding], files: int | None, expected: str) -> None:
    assert summary(findings, files) == expected


def test_json_of_no_findings() -> None:
    assert json.loads(render_json([], 0)) == {
        "findings": [], "summary": {"files": 0, "errors": 0, "warnings": 0}
    }


# ---------------------------------------------------------------- SARIF
def sarif_validator() -> Draft4Validator:
    # The full SARIF 2.1.0 (rtm.5) schema as schemastore publishes it, vendored from the
    # MIT-licensed npm package @microsoft/jest-sarif: draft-04, self-contained, no network.
    schema = json.loads(SARIF_SCHEMA.read_text())
    return Draft4Validator(schema)


def sarif_of(*args: str) -> dict[str, Any]:
    code, out, _ = run("--format", "sarif", *args)
    assert code in (0, 1)
    doc: dict[str, Any] = json.loads(out)
    return doc


def test_sarif_is_valid_and_complete() -> None:
    doc = sarif_of(*ARGS)
    errors = sorted(sarif_validator().iter_errors(doc), key=str)
    assert errors == []
    run_ = doc["runs"][0]
    driver = run_["tool"]["driver"]
    assert driver["name"] == "airgate"
    assert [r["id"] for r in driver["rules"]] == ["bad-quorum", "ignored-field"]
    assert driver["rules"][0]["shortDescription"]["text"] == "A quorum below 1."
    results = run_["results"]
    assert [r["level"] for r in results] == ["error"] * 2 + ["warning"] * 3
    first = results[0]
    assert first["ruleId"] == "bad-quorum" and first["ruleIndex"] == 0
    assert first["message"]["text"] == "quorum must be at least 1, got 0"
    assert first["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "bad-quorum.yaml", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 7, "startColumn": 24},
    }


def test_sarif_of_every_invalid_sample_is_valid() -> None:
    names = sorted(p.name for p in INVALID.glob("*.yaml")) + ["duplicate-rule-id"]
    doc = sarif_of(*names)
    assert list(sarif_validator().iter_errors(doc)) == []
    assert len(doc["runs"][0]["results"]) > len(names)


def test_sarif_of_a_clean_run_is_valid() -> None:
    valid = str(INVALID.parent / "valid")
    doc = sarif_of(valid)
    assert list(sarif_validator().iter_errors(doc)) == []
    assert doc["runs"][0]["results"] == []


def test_sarif_schema_catches_a_broken_log() -> None:
    doc = sarif_of(*ARGS)
    doc["runs"][0]["results"][0]["level"] = "fatal"
    del doc["version"]
    assert len(list(sarif_validator().iter_errors(doc))) == 2


def test_sarif_uri_is_percent_encoded() -> None:
    finding = Finding("error", "c", "m", Location("dir name\\a#b.yaml", 1, 2))
    uri = json.loads(render_sarif([finding]))["runs"][0]["results"][0]["locations"][0][
        "physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "dir%20name/a%23b.yaml"


def test_github_shows_other_control_characters_as_escapes() -> None:
    # A message quoting a policy value: ESC, BEL, a bidi override, a backslash.
    finding = Finding("warning", "c", "rule \x1b]0;owned\x07 \u202eevil\\x\nnext",
                      Location("p\x1b[2J.yaml", 1, 1))
    out = render_github([finding])
    assert out == ("::warning file=p\\e[2J.yaml,line=1,col=1,title=c::"
                   "rule \\e]0;owned\\x07 \\u202eevil\\\\x%0Anext\n")
    assert all(ch.isprintable() for ch in out.rstrip("\n"))
