"""``airgate validate``: every kind of broken policy, at the right line and column.

Golden files: tests/data/policies/invalid/NAME.yaml (or the directory NAME/)
holds a broken policy; NAME.expected holds the exact text findings, with paths
relative to the invalid/ folder.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from airgate.checks import analysis
from airgate.checks.validate import CODES, validate_paths
from airgate.cli import main
from airgate.errors import Finding
from airgate.model import PolicySet
from airgate.policy.yamlsrc import MAX_FILE_BYTES
from helpers import DATA as SAMPLES
from helpers import ROOT

DATA = SAMPLES / "policies"
INVALID = DATA / "invalid"
CASES = sorted(p.stem for p in INVALID.glob("*.expected"))

HEAD = "apiVersion: airgate/v1\nkind: Policy\nmetadata:\n  name: p\nspec:\n"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["validate", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def case_path(name: str) -> str:
    return name if (INVALID / name).is_dir() else f"{name}.yaml"


def test_every_invalid_sample_has_an_expectation() -> None:
    samples = {p.stem for p in INVALID.glob("*.yaml")} | {p.name for p in INVALID.iterdir()
                                                           if p.is_dir()}
    assert samples == set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_invalid_sample(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(INVALID)
    expected = (INVALID / f"{name}.expected").read_text()
    code, out, err = run(case_path(name))
    assert out == expected
    assert "Traceback" not in out + err
    has_error = ": error: " in expected
    assert code == (1 if has_error else 0)
    # Every code used in a golden file is documented (SARIF rules, docs).
    for line in expected.splitlines():
        assert line.split(": ")[2] in CODES


@pytest.mark.parametrize(
    "code",
    [
        "unknown-action", "action-target", "unknown-entity", "unknown-verdict",
        "duplicate-rule-id", "duplicate-action", "bad-duration", "bad-regex", "bad-glob",
        "bad-cidr", "bad-quorum", "bad-condition", "missing-reason", "expired-exclusion",
        "bad-date", "no-effect", "conflicting-effect", "schema", "no-policy",
        "duplicate-automation", "unknown-role", "ignored-field", "unknown-key", "yaml-tag",
        "duplicate-key", "too-large", "too-deep",
    ],
)
def test_each_named_kind_of_breakage_has_a_golden_case(code: str) -> None:
    found = "".join((INVALID / f"{n}.expected").read_text() for n in CASES)
    assert f": {code}: " in found


def test_all_invalid_samples_at_once_report_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(INVALID)
    expected = "".join((INVALID / f"{n}.expected").read_text() for n in CASES)
    code, out, err = run(*(case_path(n) for n in CASES))
    # One run over every file loses nothing: the samples share rule ids such as
    # 'r', so the run also finds duplicates across files, on top of each golden file.
    assert code == 1
    assert set(out.splitlines()) >= set(expected.splitlines())
    assert err.startswith(f"{len(CASES) + 1} files checked: ")


def test_valid_samples_pass() -> None:
    code, out, err = run("--strict", str(DATA / "valid"))
    assert (code, out) == (0, "")
    assert err == "2 files checked: 0 errors, 0 warnings\n"


def test_shipped_policies_pass() -> None:
    root = ROOT / "policies"
    if not any(root.glob("*.yaml")):
        pytest.skip("no policy packs yet")
    code, out, _ = run(str(root))
    assert (code, out) == (0, "")


# ---------------------------------------------------------------- hostile inputs
HOSTILE: list[tuple[str, bytes, str]] = [
    ("empty.yaml", b"", "empty.yaml:1:1: error: empty: policy file is empty\n"),
    ("blank.yaml", b"  \n\n", "blank.yaml:1:1: error: empty: policy file is empty\n"),
    (
        "latin1.yaml",
        HEAD.encode() + b"  rules: []\n# caf\xe9\n",
        "latin1.yaml:7:6: error: encoding: policy file is not valid UTF-8 (byte 0xe9)\n",
    ),
    (
        "binary.yaml",
        b"\x7fELF\x02\x01\x01\x00\x00\x00",
        "binary.yaml:1:1: error: yaml: invalid YAML: unacceptable character #x007f"
        " (control or binary data)\n",
    ),
    (
        "bad.yaml",
        b"apiVersion: airgate/v1\nkind: [Policy\n",
        "bad.yaml:3:1: error: yaml: invalid YAML: expected ',' or ']', but got '<stream end>'\n",
    ),
    (
        "bom.yaml",
        b"\xef\xbb\xbf" + HEAD.encode() + b"  rules: []\n",
        "",
    ),
]


@pytest.mark.parametrize(("name", "content", "expected"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_files(
    name: str, content: bytes, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path(name).write_bytes(content)
    code, out, err = run(name)
    assert out == expected
    assert code == (1 if expected else 0)
    assert "Traceback" not in err


def test_file_over_the_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("big.yaml").write_bytes(HEAD.encode() + b"#" * MAX_FILE_BYTES)
    code, out, _ = run("big.yaml")
    size = len(HEAD) + MAX_FILE_BYTES
    assert code == 1
    assert out == (
        f"big.yaml:1:1: error: too-large: policy file is {size} bytes,"
        f" above the limit of {MAX_FILE_BYTES} bytes\n"
    )


def test_directory_without_yaml_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("empty-dir").mkdir()
    Path("empty-dir/readme.txt").write_text("no policies here")
    code, out, err = run("empty-dir")
    assert code == 1
    assert out == "empty-dir: error: no-policy: directory holds no *.yaml or *.yml file\n"
    assert err == "0 files checked: 1 error, 0 warnings\n"


def test_alias_bomb_fails_fast_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(INVALID)
    code, out, _ = run("alias-bomb.yaml")
    assert code == 1
    assert "alias expansion is bounded" in out


def test_a_broken_file_does_not_stop_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("a.yaml").write_bytes(b"a: !!python/object:os.system x\n")
    Path("b.yaml").write_text(HEAD + "  rules:\n    - {id: r, match: {}, action: nuke}\n")
    code, out, _ = run(".")
    assert code == 1
    assert out.splitlines() == [
        "a.yaml:1:4: error: yaml-tag: tag 'tag:yaml.org,2002:python/object:os.system'"
        " is not allowed (only plain YAML data is)",
        "b.yaml:7:34: error: unknown-action: unknown action 'nuke'",
    ]


def test_custom_entity_types_and_actions_span_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("a.yaml").write_text(
        HEAD + "  rules:\n    - {id: r, match: {entity: ticket}, action: open_ticket}\n"
    )
    Path("b.yaml").write_text(
        HEAD.replace("name: p", "name: q")
        + "  actions:\n    - {id: open_ticket, targets: [ticket]}\n"
    )
    assert run(".")[:2] == (0, "")


def test_hidden_directories_are_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path(".git").mkdir()
    Path(".git/broken.yaml").write_text("a: [\n")
    Path("p.yaml").write_text(HEAD + "  rules: []\n")
    assert run(".") == (0, "", "1 file checked: 0 errors, 0 warnings\n")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_in_a_policy_directory_is_an_error_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Opening a FIFO for reading blocks until someone writes: validate would hang.
    # Skipping it silently would hide whatever policy was meant to be there.
    monkeypatch.chdir(tmp_path)
    Path("p.yaml").write_text(HEAD + "  rules: []\n")
    os.symlink("p.yaml", "link.yaml")  # a link to a regular file still counts
    assert run(".") == (0, "", "1 file checked: 0 errors, 0 warnings\n")
    os.mkfifo("pipe.yaml")
    code, out, _ = run(".")
    assert code == 1
    assert "pipe.yaml: error: not-a-file: not a regular file" in out


def test_policy_tests_beside_policies_are_not_policies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("p.yaml").write_text(HEAD + "  rules: []\n")
    Path("p-test.yaml").write_text(
        "apiVersion: airgate/v1\nkind: PolicyTest\nmetadata: {name: t}\nspec: {cases: []}\n"
    )
    assert run(".") == (0, "", "1 file checked: 0 errors, 0 warnings\n")


# ---------------------------------------------------------------- exit codes
def test_exit_codes_and_strict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("warn.yaml").write_text(
        HEAD + "  rules:\n    - {id: r, match: {}, action: kill_process,"
        " approval: {roles: [tier2]}}\n"
    )
    code, out, _ = run("warn.yaml")
    assert code == 0 and ": warning: unknown-role: " in out
    assert run("--strict", "warn.yaml")[0] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Missing argument 'PATHS...'"),
        (["does-not-exist.yaml"], "'does-not-exist.yaml' does not exist"),
        (["--format", "xml", "."], "'xml' is not one of"),
        (["--bogus", "."], "--bogus"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(*args)
    assert code == 2
    assert out == ""
    assert message in err


def test_help_documents_formats_and_exit_codes() -> None:
    result = CliRunner().invoke(main, ["validate", "--help"])
    assert result.exit_code == 0
    for word in ("text", "json", "github", "sarif", "--strict", "stderr", "Exit 0"):
        assert word in result.stdout


# ---------------------------------------------------------------- library
def test_validate_paths_injects_today(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        HEAD
        + "  rules:\n    - {id: r, match: {}, effect: exclude, reason: x, expires: 2030-06-01}\n"
    )
    assert validate_paths(policy, today=dt.date(2030, 6, 1)) == []
    (finding,) = validate_paths(policy, today=dt.date(2030, 6, 2))
    assert (finding.severity, finding.code) == ("warning", "expired-exclusion")
    assert (finding.location.line, finding.location.column) == (7, 63)
    assert finding.location.json_path == "$.spec.rules[0].expires"


def test_strict_checks_run_only_under_strict_on_a_clean_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[PolicySet] = []

    def check(policy_set: PolicySet, *, today: dt.date | None = None) -> list[Finding]:
        seen.append(policy_set)
        return [Finding("warning", "shadowed-rule", "rule r never fires")]

    monkeypatch.setitem(CODES, "shadowed-rule", "test")
    monkeypatch.setattr(analysis, "check", check)
    good = tmp_path / "good.yaml"
    good.write_text(HEAD + "  rules:\n    - {id: r, match: {}, action: kill_process}\n")
    assert validate_paths(good) == []
    assert [f.code for f in validate_paths(good, strict=True)] == ["shadowed-rule"]
    assert [r.id for r in seen[0].rules] == ["r"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(HEAD + "  rules:\n    - {id: r, match: {}, action: nuke}\n")
    assert [f.code for f in validate_paths(bad, strict=True)] == ["unknown-action"]
    assert len(seen) == 1
