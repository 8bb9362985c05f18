"""Policy and suite directories with symbolic links: followed, or a located error, never a
silent gap (a skipped exclusion would let a domain controller be isolated)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airgate.errors import PolicyLoadErrors
from airgate.policy.loader import analyze_paths, load_policy_set
from helpers import cli, policy_doc

RULE = "    - {id: isolate, match: {entity: device}, action: isolate_device}\n"
EXCLUSION = ("    - {id: never-dc, effect: exclude, reason: domain controllers,"
             " match: {entity: device}}\n")


def _tree(tmp_path: Path) -> Path:
    top = tmp_path / "policies"
    top.mkdir()
    (top / "main.yaml").write_text(policy_doc(RULE, name="main"))
    return top


def _shared(tmp_path: Path) -> Path:
    """A folder outside the policy tree holding the exclusion."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "exclusions.yaml").write_text(policy_doc(EXCLUSION, name="exclusions"))
    return shared


def test_a_linked_directory_outside_the_tree_is_followed(tmp_path: Path) -> None:
    top = _tree(tmp_path)
    (top / "common").symlink_to(_shared(tmp_path), target_is_directory=True)
    rules = {rule.id for rule in load_policy_set(top).rules}
    assert rules == {"isolate", "never-dc"}


def test_a_linked_file_is_followed(tmp_path: Path) -> None:
    top = _tree(tmp_path)
    (top / "exclusions.yaml").symlink_to(_shared(tmp_path) / "exclusions.yaml")
    assert {rule.id for rule in load_policy_set(top).rules} == {"isolate", "never-dc"}


def test_a_dangling_link_is_a_located_error(tmp_path: Path) -> None:
    top = _tree(tmp_path)
    (top / "common").symlink_to(tmp_path / "gone", target_is_directory=True)
    with pytest.raises(PolicyLoadErrors, match="broken symbolic link") as caught:
        load_policy_set(top)
    (finding,) = caught.value.findings
    assert finding.code == "broken-link"
    assert finding.location.file == str(top / "common")


def test_a_link_loop_is_a_located_error_and_ends(tmp_path: Path) -> None:
    top = _tree(tmp_path)
    (top / "sub").mkdir()
    (top / "sub" / "again").symlink_to(top, target_is_directory=True)
    analysis = analyze_paths(top)
    assert [(f.code, f.location.file) for f in analysis.findings] == [
        ("link-loop", str(top / "sub" / "again"))]
    assert analysis.files == [str(top / "main.yaml")]


def test_links_that_point_at_each_other_are_an_error(tmp_path: Path) -> None:
    top = _tree(tmp_path)
    os.symlink("b", top / "a")
    os.symlink("a", top / "b")
    findings = analyze_paths(top).findings
    assert sorted((f.code, Path(f.location.file).name) for f in findings) == [
        ("broken-link", "a"), ("broken-link", "b")]


def test_one_folder_linked_twice_is_read_once(tmp_path: Path) -> None:
    top = _tree(tmp_path)
    shared = _shared(tmp_path)
    (top / "one").symlink_to(shared, target_is_directory=True)
    (top / "two").symlink_to(shared, target_is_directory=True)
    analysis = analyze_paths(top)
    assert analysis.findings == []
    assert analysis.files == [str(top / "main.yaml"), str(top / "one" / "exclusions.yaml")]


def test_a_fifo_named_yaml_is_an_error_not_a_hang(tmp_path: Path) -> None:
    top = _tree(tmp_path)
    os.mkfifo(top / "pipe.yaml")
    with pytest.raises(PolicyLoadErrors, match="not a regular file"):
        load_policy_set(top)


def test_validate_strict_fails_on_a_dangling_link(tmp_path: Path) -> None:
    top = _tree(tmp_path)
    (top / "exclusions.yaml").symlink_to(tmp_path / "gone.yaml")
    result = cli("validate", "--strict", str(top))
    assert result.exit_code == 1
    assert f"{top / 'exclusions.yaml'}: error: broken-link: broken symbolic link" in (
        result.output)


SUITE = """\
apiVersion: airgate/v1
kind: PolicyTest
metadata: {{name: s}}
spec:
  policy: {policy}
  cases:
    - name: dc
      evidence:
        apiVersion: airgate/v1
        kind: Investigation
        id: inv
        evidence:
          - {{type: device, verdict: Malicious, fields: {{mdeDeviceId: d1}}}}
      expect_no_actions: true
"""


def test_suites_follow_links_and_report_dangling_ones(tmp_path: Path) -> None:
    top = _tree(tmp_path)
    (top / "common").symlink_to(_shared(tmp_path), target_is_directory=True)
    tests = tmp_path / "suites"
    tests.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "dc.yaml").write_text(SUITE.format(policy=top))
    (tests / "linked").symlink_to(outside, target_is_directory=True)
    passed = cli("test", str(tests))
    assert passed.exit_code == 0, passed.output
    assert "1 passed" in passed.output
    (tests / "gone").symlink_to(tmp_path / "nothing", target_is_directory=True)
    failed = cli("test", str(tests))
    assert failed.exit_code == 1
    assert f"airgate: {tests / 'gone'}: error: broken-link: broken symbolic link" in (
        failed.output)
