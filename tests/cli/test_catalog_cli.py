"""``airgate actions-catalog`` and ``airgate schema``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from airgate.catalog import BUILTIN_ACTIONS
from airgate.cli import main
from airgate.cli.schema import NAMES
from helpers import ROOT

HEAD = "apiVersion: airgate/v1\nkind: Policy\nmetadata:\n  name: p\nspec:\n"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_table_lists_every_builtin_action() -> None:
    code, out, err = invoke("actions-catalog")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "CATEGORY", "TARGETS", "UNDO", "APPROVER"]
    ids = {line.split()[0] for line in lines[1:]}
    assert ids == set(BUILTIN_ACTIONS)
    quarantine = next(line for line in lines if line.startswith("quarantine_file "))
    assert "restore_file (bulk by hash)" in quarantine and "active-remediation" in quarantine
    soft = next(line for line in lines if line.startswith("soft_delete_email "))
    assert "change to move_to_inbox" in soft and "search-and-purge" in soft


def test_json_lists_every_builtin_action() -> None:
    code, out, _ = invoke("actions-catalog", "--format", "json")
    assert code == 0
    actions = {a["id"]: a for a in json.loads(out)}
    assert set(actions) == set(BUILTIN_ACTIONS)
    assert actions["isolate_device"] == BUILTIN_ACTIONS["isolate_device"].as_dict()
    assert actions["contain_user"]["undo"]["requires_role"] == "global-admin"
    assert {a["category"] for a in actions.values()} == {"email", "device", "identity"}


def test_policy_adds_custom_actions(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        HEAD + "  actions:\n    - {id: open_ticket, display_name: \"Open\\x1b[31m ticket\","
        " targets: [device, ticket], undo_action: close_ticket}\n"
    )
    code, out, _ = invoke("actions-catalog", "--format", "json", "--policy", str(policy))
    assert code == 0
    custom = [a for a in json.loads(out) if a["custom"]]
    assert [a["id"] for a in custom] == ["open_ticket"]
    assert custom[0]["targets"] == ["device", "ticket"]
    assert custom[0]["undo"]["action"] == "close_ticket"
    code, out, _ = invoke("actions-catalog", "--policy", str(policy))
    line = next(line for line in out.splitlines() if line.startswith("open_ticket"))
    # The escape character from the policy never reaches the terminal.
    assert "\x1b" not in out and "Open?[31m ticket [custom]" in line


def test_broken_policy_lists_its_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("p.yaml").write_text(HEAD + "  actions:\n    - {id: kill_process, targets: [process]}\n")
    code, out, err = invoke("actions-catalog", "--policy", "p.yaml")
    assert (code, out) == (1, "")
    assert err == (
        "p.yaml:7:12: error: duplicate-action: custom action 'kill_process' has the name"
        " of a built-in action\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["actions-catalog", "--format", "csv"], "'csv' is not one of"),
        (["actions-catalog", "--policy", "missing.yaml"], "does not exist"),
    ],
)
def test_catalog_usage_errors(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = invoke(*args)
    assert code == 2 and message in err


# ---------------------------------------------------------------- schema
def test_schema_policy_prints_the_shipped_file() -> None:
    code, out, err = invoke("schema", "policy")
    assert (code, err) == (0, "")
    assert out == (ROOT / "src" / "airgate" / "schemas" / "policy.schema.json").read_text()
    assert json.loads(out)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("name", NAMES)
def test_every_schema_name_prints_json_or_says_it_is_missing(name: str) -> None:
    code, out, err = invoke("schema", name)
    shipped = ROOT / "src" / "airgate" / "schemas" / f"{name}.schema.json"
    if shipped.exists():
        assert code == 0 and json.loads(out)
    else:
        assert code == 1 and f"schema {name!r} is not shipped" in err


def test_unknown_schema_is_a_usage_error_listing_the_names() -> None:
    code, out, err = invoke("schema", "nope")
    assert (code, out) == (2, "")
    names = "policy, evidence, decision, policy-test, config"
    assert f"unknown schema 'nope'; choose one of: {names}" in err


def test_pre_commit_hook_runs_validate() -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "airgate-validate"
    assert hook["entry"] == "airgate validate"
    assert hook["language"] == "python"
    import re

    files = re.compile(hook["files"])
    assert files.search("policies/email.yaml") and files.search("policies/sub/x.yml")
    assert not files.search("src/airgate/policy.py")
