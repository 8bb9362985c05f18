"""The README is part of the product: its commands and examples must stay true."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from airgate.cli import COMMANDS, main
from airgate.lint import validate_paths

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_quick_start_has_exactly_two_commands() -> None:
    assert len(quick_start_commands()) == 2


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert quick_start_commands()[1] in ci.splitlines()


def test_quick_start_example_files_exist() -> None:
    words = shlex.split(quick_start_commands()[0].split("airgate evaluate", 1)[1])
    paths = [w for w in words if not w.startswith("--")]
    assert paths, "the quick start evaluates no file"
    for path in paths:
        assert (ROOT / path).exists(), path


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_is_documented(name: str) -> None:
    command = main.get_command(None, name)  # type: ignore[arg-type]
    assert command is not None, f"{name} is listed but not importable"
    assert command.help and command.help.strip(), f"{name} has no help text"
    assert f"airgate {name}" in README, f"README does not mention `airgate {name}`"
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output


def test_readme_policy_example_is_valid(tmp_path: Path) -> None:
    example = re.search(r"```yaml\n(# yaml-language-server.*?)```", README, re.S)
    assert example is not None
    path = tmp_path / "example.yaml"
    path.write_text(example.group(1), encoding="utf-8")
    assert validate_paths([path], strict=True) == []
