"""The README is part of the product: its commands and examples must stay true."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from airgate.checks.validate import validate_paths
from airgate.cli import COMMANDS, main
from airgate.compat import MOVED_MODULES

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


DOC_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _doc_imports() -> list[tuple[str, str, str]]:
    found = []
    for page in DOC_PAGES:
        text = page.read_text(encoding="utf-8")
        for module, names in re.findall(r"^from (airgate[\w.]*) import ([\w, ]+)$", text, re.M):
            found += [(page.name, module, n.strip()) for n in names.split(",")]
    return found


def _doc_dotted_names() -> list[tuple[str, str]]:
    found = set()
    for page in DOC_PAGES:
        for name in re.findall(r"`(airgate(?:\.\w+)+)(?:\(|`)",
                               page.read_text(encoding="utf-8")):
            # file names, not Python; former module paths are shown as such
            if name not in ("airgate.yaml", "airgate.db") and name not in MOVED_MODULES:
                found.add((page.name, name))
    return sorted(found)


@pytest.mark.parametrize(("page", "module", "name"), _doc_imports())
def test_imports_shown_in_the_docs_work_without_a_deprecation(page: str, module: str,
                                                             name: str) -> None:
    import importlib

    assert getattr(importlib.import_module(module), name) is not None


@pytest.mark.parametrize(("page", "dotted"), _doc_dotted_names())
def test_dotted_names_in_the_docs_resolve(page: str, dotted: str) -> None:
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            target = getattr(target, attr)
        return
    raise AssertionError(f"{page}: {dotted} does not resolve")
