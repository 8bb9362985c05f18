"""Policy tests: loading suites, matching expectations, output formats, exit codes."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import Result
from jsonschema import Draft202012Validator

from airgate.checks.runner import _check_case, default_engines, load_suites, run_suites
from airgate.checks.suites import Case, Expectation, Suite, policy_test_schema
from airgate.errors import PolicyLoadErrors
from airgate.model import Approval, Decision, EntityRef
from helpers import cli, policy_doc

POLICY = policy_doc("""\
    - id: quarantine
      match: {verdict: malicious, entity: file}
      action: quarantine_file
      approval: auto
    - id: scan
      match: {verdict: malicious, entity: device}
      action: run_antivirus_scan
      approval: auto
    - id: isolate
      match: {verdict: malicious, entity: device}
      action: isolate_device
      approval: required
    - id: no-isolate-lab
      match: {entity: device, where: {field: deviceDnsName, glob: "lab-*"}}
      effect: exclude
      actions: [isolate_device]
      reason: lab machines stay online
      expires: 2030-01-31
""", name="p")

HEADER = """\
apiVersion: airgate/v1
kind: PolicyTest
metadata: {name: s}
spec:
  policy: policy.yaml
"""


def device(name: str, verdict: str = "malicious") -> str:
    return (
        "{apiVersion: airgate/v1, kind: Investigation, id: inv, evidence: [{type: device,"
        f" verdict: {verdict}, fields: {{mdeDeviceId: d-{name}, deviceDnsName: '{name}'}}}}]}}"
    )


def write(tmp_path: Path, cases: str, *, header: str = HEADER, name: str = "suite.yaml") -> Path:
    (tmp_path / "policy.yaml").write_text(POLICY, encoding="utf-8")
    suite = tmp_path / name
    suite.write_text(header + textwrap.indent(textwrap.dedent(cases), "  "), encoding="utf-8")
    return suite


def run(*args: str) -> Result:
    return cli("test", "--engine", "indexed", *args)


PASSING = f"""\
  cases:
    - name: malicious device
      evidence: {device("ws-1")}
      expect:
        - action: run_antivirus_scan
          entity: {{type: device, key: "device:d-ws-1", name: ws-1}}
          approval: auto
          rules: [scan]
        - action: isolate_device
          approval: required
          roles: [active-remediation]
          quorum: 1
"""


def test_a_passing_suite_exits_0_and_reports_coverage(tmp_path: Path) -> None:
    result = run(str(write(tmp_path, PASSING)))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "1 passed, 0 failed, 1 case (engine: indexed)",
        "rule coverage: 2/4 (50.0%)",
        "uncovered rules:",
        f"  - quarantine ({tmp_path / 'policy.yaml'})",
        f"  - no-isolate-lab ({tmp_path / 'policy.yaml'})",
    ]


def test_failure_prints_expected_against_actual(tmp_path: Path) -> None:
    suite = write(tmp_path, f"""\
      cases:
        - name: wrong expectation
          evidence: {device("ws-1")}
          expect:
            - action: run_antivirus_scan
              approval: required
            - action: isolate_device
    """)
    result = run(str(suite))
    assert result.exit_code == 1
    assert result.stdout.splitlines()[:12] == [
        f"FAIL {suite}::wrong expectation ({suite}:7:7)",
        "    expected:",
        "      - run_antivirus_scan approval=required",
        "      - isolate_device",
        "    not produced:",
        "      - run_antivirus_scan approval=required",
        "    unexpected:",
        "      - run_antivirus_scan on device 'ws-1' (key 'device:d-ws-1', investigation 'inv')"
        " approval=auto roles=active-remediation quorum=1 rules=scan",
        "    actual:",
        "      - isolate_device on device 'ws-1' (key 'device:d-ws-1', investigation 'inv')"
        " approval=required roles=active-remediation quorum=1 rules=isolate",
        "      - run_antivirus_scan on device 'ws-1' (key 'device:d-ws-1', investigation 'inv')"
        " approval=auto roles=active-remediation quorum=1 rules=scan",
        "0 passed, 1 failed, 1 case (engine: indexed)",
    ]


@pytest.mark.parametrize(
    ("case", "passes"),
    [
        # exact set: an unlisted decision fails the case...
        ("expect: [{action: isolate_device}]", False),
        # ...unless the case allows other decisions
        ("expect: [{action: isolate_device}]\nallow_other_decisions: true", True),
        ("expect_no_actions: true", False),
        # an expectation can never take a decision twice
        ("expect: [{action: isolate_device}, {action: isolate_device},"
         " {action: run_antivirus_scan}]", False),
        ("expect: [{action: isolate_device, rules: [isolate, scan]},"
         " {action: run_antivirus_scan}]", False),
        ("expect: [{action: isolate_device, excluded: true}, {action: run_antivirus_scan}]",
         False),
        ("expect: [{action: isolate_device, entity: {name: WS-1}},"
         " {action: run_antivirus_scan}]", False),
    ],
)
def test_matching_rules(tmp_path: Path, case: str, passes: bool) -> None:
    suite = write(tmp_path, f"  cases:\n    - name: c\n      evidence: {device('ws-1')}\n"
                  + textwrap.indent(case, "      ") + "\n")
    assert run(str(suite)).exit_code == (0 if passes else 1)


def test_matching_is_one_to_one_and_not_greedy() -> None:
    def decision(key: str) -> Decision:
        return Decision("inv", EntityRef("file", key, key), "quarantine_file",
                        Approval(required=False, roles=("active-remediation",)), ("q",))

    # The loose expectation comes first; greedy matching would give it file a,
    # which the strict one needs.
    case = Case("c", (Expectation("quarantine_file"),
                      Expectation("quarantine_file", entity_key="a")))
    suite = Suite("s.yaml", "s", ("p.yaml",), (case,))
    result = _check_case(suite, case, [[decision("a"), decision("b")]], [], ("indexed",))
    assert result.passed


def test_engines_that_disagree_fail_the_case() -> None:
    a = Decision("inv", EntityRef("file", "k", "f.exe"), "quarantine_file",
                 Approval(required=False, roles=("active-remediation",)), ("q",))
    b = Decision("inv", EntityRef("file", "k", "f.exe"), "quarantine_file",
                 Approval(required=True, roles=("active-remediation",)), ("q",))
    case = Case("c", (Expectation("quarantine_file"),))
    result = _check_case(Suite("s.yaml", "s", ("p.yaml",), (case,)), case, [[a], [b]], [],
                         ("indexed", "durable"))
    assert not result.passed
    assert result.problems == (
        "engines disagree: indexed against durable\n"
        "  changed: quarantine_file on file 'f.exe' (inv): approval auto -> required",
    )


def test_exclusions_and_expiry(tmp_path: Path) -> None:
    suite = write(tmp_path, f"""\
      cases:
        - name: the lab exclusion holds before it expires
          today: 2030-01-31
          evidence: {device("lab-1")}
          expect:
            - action: run_antivirus_scan
            - action: isolate_device
              suppressed_by: [no-isolate-lab]
        - name: unlisted excluded decisions carry out nothing and may go unmentioned
          today: 2030-01-31
          evidence: {device("lab-1")}
          expect: [{{action: run_antivirus_scan}}]
        - name: after its expiry date it no longer applies
          today: 2030-02-01
          evidence: {device("lab-1")}
          expect:
            - action: run_antivirus_scan
            - action: isolate_device
              approval: required
    """)
    result = run(str(suite), "--min-coverage", "75")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "rule coverage: 3/4 (75.0%)" in result.stdout


def test_evidence_file_is_relative_to_the_suite(tmp_path: Path) -> None:
    (tmp_path / "cases").mkdir()
    (tmp_path / "ev.yaml").write_text(device("ws-2").replace("inv", "inv-2"), encoding="utf-8")
    header = HEADER.replace("policy: policy.yaml", "policy: ../policy.yaml")
    suite = write(tmp_path, """\
      cases:
        - name: from a file
          evidence_file: ../ev.yaml
          expect:
            - {action: run_antivirus_scan, investigation: inv-2}
            - {action: isolate_device, investigation: inv-2}
    """, header=header, name="cases/suite.yaml")
    result = run(str(suite))
    assert result.exit_code == 0, result.stdout + result.stderr


def test_bad_evidence_fails_its_case_with_a_location(tmp_path: Path) -> None:
    suite = write(tmp_path, """\
      cases:
        - name: missing file
          evidence_file: nowhere.json
          expect_no_actions: true
    """)
    result = run(str(suite))
    assert result.exit_code == 1
    assert f"evidence: {tmp_path / 'nowhere.json'}: no such file" in result.stdout


@pytest.mark.parametrize(
    ("cases", "message"),
    [
        ("  cases:\n    - name: x\n      evidense: {}\n      expect_no_actions: true\n",
         "suite.yaml:8:7: error: unknown-key: unknown key 'evidense' (did you mean 'evidence'?)"),
        ("  cases:\n    - name: x\n      evidence: {}\n"
         "      expect: [{action: a, approval: maybe}]\n",
         "suite.yaml:9:38: error: schema: 'maybe' is not one of: auto, required"),
        ("  cases:\n    - name: x\n      evidence: {}\n      expect_no_actions: true\n"
         "      today: 2030-02-30\n",
         "suite.yaml:10:14: error: bad-date: '2030-02-30' is not a date (YYYY-MM-DD)"),
        ("  cases: [\n", "suite.yaml:7:1: error: yaml: invalid YAML:"),
        ("  cases:\n    - name: x\n      evidence: !!python/object:os.system {}\n",
         "suite.yaml:8:17: error: yaml-tag: tag"),
        ("  cases:\n    - name: x\n      expect_no_actions: true\n",
         "suite.yaml:7:7: error: bad-case: case 'x' needs evidence (inline) or evidence_file"),
        ("  cases:\n    - name: x\n      evidence: {}\n      evidence_file: a.json\n"
         "      expect_no_actions: true\n",
         "suite.yaml:9:22: error: bad-case: case 'x' takes evidence or evidence_file, not both"),
        ("  cases:\n    - name: x\n      evidence: {}\n      expect_no_actions: false\n",
         "suite.yaml:7:7: error: bad-case: case 'x' needs expect (a list) or"
         " expect_no_actions: true"),
        ("  cases:\n    - name: x\n      evidence: {}\n      expect: []\n"
         "      expect_no_actions: true\n",
         "suite.yaml:10:26: error: bad-case: case 'x' takes expect or expect_no_actions,"
         " not both"),
    ],
    ids=["unknown-key", "enum", "bad-date", "yaml", "tag", "no-evidence", "two-evidence",
         "no-expect", "two-expect"],
)
def test_invalid_suites_are_located(tmp_path: Path, cases: str, message: str) -> None:
    suite = write(tmp_path, cases)
    result = run(str(suite))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"airgate: {tmp_path / message}"), result.stderr
    with pytest.raises(PolicyLoadErrors, match=r"suite\.yaml|invalid|unknown|not"):
        load_suites([suite])


def test_the_suite_schema_is_valid_json_schema() -> None:
    Draft202012Validator.check_schema(policy_test_schema())


def test_invalid_policy_under_test_is_located(tmp_path: Path) -> None:
    suite = write(tmp_path, PASSING)
    (tmp_path / "policy.yaml").write_text(POLICY.replace("run_antivirus_scan", "scan_it"),
                                          encoding="utf-8")
    result = run(str(suite))
    assert result.exit_code == 1
    assert "policy.yaml:12:15: error: unknown-action:" in result.stderr


def test_no_cases_is_a_failure(tmp_path: Path) -> None:
    write(tmp_path, "  cases: []\n")
    result = run(str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr == (
        f"airgate: error: no test cases found in {tmp_path}"
        " (suites are YAML files with kind: PolicyTest)\n"
    )


def test_a_directory_holds_suites_beside_other_yaml(tmp_path: Path) -> None:
    write(tmp_path, PASSING)
    (tmp_path / "notes.yaml").write_text("just: [a, note\n", encoding="utf-8")  # not a suite
    result = run(str(tmp_path))
    assert result.exit_code == 0, result.stderr
    named = run(str(tmp_path / "policy.yaml"))  # named explicitly, it must be a suite
    assert named.exit_code == 1
    assert "policy.yaml:2:7: error: schema: expected 'PolicyTest', got 'Policy'" in named.stderr


def test_default_path_is_policies_tests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "policies" / "tests").mkdir(parents=True)
    write(tmp_path / "policies" / "tests", PASSING)
    monkeypatch.chdir(tmp_path)
    result = run()
    assert result.exit_code == 0, result.stderr
    assert "1 passed" in result.stdout


def test_min_coverage_fails_when_rules_go_unexercised(tmp_path: Path) -> None:
    suite = write(tmp_path, PASSING)
    result = run(str(suite), "--min-coverage", "80")
    assert result.exit_code == 1
    assert result.stderr == "airgate: rule coverage 50.0% is below --min-coverage 80%\n"
    assert "  - quarantine (" in result.stdout


HOSTILE = "ws-<&\"'>\x1b[2J\x07\u202e"


def hostile_suite(tmp_path: Path) -> Path:
    evil = json.dumps(HOSTILE)
    return write(tmp_path, f"""\
      cases:
        - name: passes
          evidence: {device("ws-1")}
          expect: [{{action: run_antivirus_scan}}, {{action: isolate_device}}]
        - name: "fails <&>"
          evidence:
            apiVersion: airgate/v1
            kind: Investigation
            id: inv
            evidence:
              - type: device
                verdict: malicious
                fields: {{mdeDeviceId: d-x, deviceDnsName: {evil}}}
          expect_no_actions: true
    """)


def test_junit_is_valid_xml_with_hostile_text(tmp_path: Path) -> None:
    result = run(str(hostile_suite(tmp_path)), "--format", "junit")
    assert result.exit_code == 1
    root = ET.fromstring(result.stdout.encode("utf-8"))  # noqa: S314 - our own output
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "s"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["passes", "fails <&>"]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None and failure.text is not None
    assert failure.get("message") == "expected: no actions"
    assert "\x1b" not in failure.text and "\x07" not in failure.text
    assert "ws-<&" in failure.text


def test_text_output_escapes_hostile_evidence(tmp_path: Path) -> None:
    result = run(str(hostile_suite(tmp_path)))
    assert result.exit_code == 1
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    assert "\\x1b[2J" in result.stdout


def test_json_output(tmp_path: Path) -> None:
    result = run(str(hostile_suite(tmp_path)), "--format", "json", "--min-coverage", "10")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["passed"] is False
    assert doc["engines"] == ["indexed"]
    assert doc["summary"] == {"cases": 2, "passed": 1, "failed": 1}
    assert doc["coverage"]["rules"] == 4 and doc["coverage"]["exercised"] == 2
    assert doc["coverage"]["percent"] == 50.0 and doc["coverage"]["min_coverage"] == 10
    assert [u["id"] for u in doc["coverage"]["uncovered"]] == ["quarantine", "no-isolate-lab"]
    first, second = doc["cases"]
    assert (first["name"], first["status"], first["line"]) == ("passes", "passed", 7)
    assert second["status"] == "failed"
    assert second["unexpected"][1]["entity"]["name"] == HOSTILE
    assert {d["action"] for d in second["decisions"]} == {"run_antivirus_scan", "isolate_device"}


@pytest.mark.skipif(default_engines() == ("indexed",), reason="durable-rules does not import")
def test_both_engines_by_default(tmp_path: Path) -> None:
    suite = write(tmp_path, PASSING)
    result = cli("test", str(suite))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "(engines: indexed, durable)" in result.stdout
    assert run_suites(load_suites([suite])).engines == ("indexed", "durable")


def test_json_names_custom_actions_from_the_suite_s_catalog(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(
        "apiVersion: airgate/v1\nkind: Policy\nmetadata: {name: p}\nspec:\n"
        "  actions:\n"
        "    - {id: open_ticket, display_name: Open a ticket, category: identity,"
        " targets: [device]}\n"
        "  rules:\n"
        "    - {id: ticket, match: {verdict: malicious, entity: device}, action: open_ticket,"
        " approval: auto}\n", encoding="utf-8")
    suite = tmp_path / "suite.yaml"
    suite.write_text(HEADER + textwrap.indent(textwrap.dedent(f"""\
        cases:
          - name: nothing expected
            evidence: {device("ws-1")}
            expect: []
        """), "  "), encoding="utf-8")
    result = run(str(suite), "--format", "json")
    assert result.exit_code == 1
    (case,) = json.loads(result.stdout)["cases"]
    (unexpected,) = case["unexpected"]
    assert unexpected["action_display_name"] == "Open a ticket"
    assert unexpected["category"] == "identity"
    assert case["decisions"][0]["category"] == "identity"
