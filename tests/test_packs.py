"""The shipped policy packs: they validate cleanly, and their own suites cover every rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from airgate.checks.runner import default_engines, load_suites
from airgate.checks.validate import validate_paths
from airgate.cli import main
from airgate.policy.loader import load_policy_set

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
PACKS = sorted(POLICIES.glob("*.yaml"))
SUITES = sorted((POLICIES / "tests").glob("*.yaml"))


def test_the_three_packs_ship() -> None:
    assert [p.name for p in PACKS] == ["email.yaml", "endpoint.yaml", "identity.yaml"]


@pytest.mark.parametrize("path", [*PACKS, POLICIES], ids=lambda p: p.name)
def test_pack_validates_without_errors_or_warnings(path: Path) -> None:
    assert validate_paths([path], strict=True) == []


@pytest.mark.parametrize(
    ("files", "first_line"),
    [
        (PACKS, "# yaml-language-server: $schema=../schemas/policy.schema.json"),
        (SUITES, "# yaml-language-server: $schema=../../schemas/policy-test.schema.json"),
    ],
    ids=["packs", "suites"],
)
def test_files_name_their_schema_for_editors(files: list[Path], first_line: str) -> None:
    assert files
    for file in files:
        assert file.read_text(encoding="utf-8").splitlines()[0] == first_line, file.name


def test_a_directory_of_packs_skips_the_test_suites() -> None:
    policy_set = load_policy_set(POLICIES)
    assert sorted(p.name for p in policy_set.policies) == [
        "email-and-collaboration", "endpoint", "identity",
    ]


def test_endpoint_pack_sets_every_automation_level() -> None:
    automation = load_policy_set(POLICIES / "endpoint.yaml").automation
    assert automation is not None
    assert automation.default_level == "full"
    assert sorted(automation.groups.values()) == ["none", "semi-all", "semi-core", "semi-non-temp"]


def test_email_rules_always_require_search_and_purge() -> None:
    for rule in load_policy_set(POLICIES / "email.yaml").rules:
        assert rule.approval is not None and rule.approval.required, rule.id
        assert rule.approval.roles == ("search-and-purge",), rule.id
        assert rule.verdicts == {"malicious", "suspicious"}, rule.id


def test_the_graph_sample_is_under_test() -> None:
    cases = [c for s in load_suites([POLICIES / "tests"]) for c in s.cases]
    files = {Path(c.evidence_file).resolve() for c in cases if c.evidence_file}
    assert ROOT / "examples" / "graph-alert.json" in files


@pytest.mark.parametrize("engine", default_engines())
def test_pack_suites_pass_with_full_coverage(engine: str) -> None:
    result = CliRunner().invoke(
        main, ["test", str(POLICIES / "tests"), "--engine", engine, "--min-coverage", "100"]
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout
    assert re.search(r"^rule coverage: (\d+)/\1 \(100\.0%\)$", result.stdout, re.MULTILINE)
    assert result.stderr == ""
