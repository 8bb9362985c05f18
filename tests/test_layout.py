"""The package's shape is a checked contract: layers, no circles, no reaching for privates."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "airgate"
STAGES = ("policy", "evidence", "engine", "checks", "runtime", "server", "cli")


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _absolute(package: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def private_imports(path: Path, module: str | None = None) -> list[str]:
    """Where a module of airgate uses another module's ``_private`` name."""
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[str] = []
    modules: dict[str, str] = {}  # local name -> airgate module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _absolute(package, node)
            if not source.startswith("airgate"):
                continue
            for alias in node.names:
                if _private(alias.name) and source != module:
                    found.append(f"{path.name}:{node.lineno}: {source}.{alias.name}")
                elif importlib.util.find_spec(f"{source}.{alias.name}") if _is_package(source) \
                        else False:
                    modules[alias.asname or alias.name] = f"{source}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("airgate") and alias.asname:
                    modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules and _private(node.attr)):
            found.append(f"{path.name}:{node.lineno}: {modules[node.value.id]}.{node.attr}")
    return found


def _is_package(name: str) -> bool:
    spec = importlib.util.find_spec(name)
    return spec is not None and spec.submodule_search_locations is not None


def test_import_linter_contracts_hold() -> None:
    # Layers, forbidden imports (click, SQLAlchemy, evidence from policy) and no circles,
    # as pyproject.toml states them.
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_module_uses_another_modules_private_names() -> None:
    found = [f for path in sorted(SRC.rglob("*.py")) for f in private_imports(path)]
    assert found == []


def test_private_name_check_catches_every_spelling(tmp_path: Path) -> None:
    # The check above must be able to fail: a from-import (absolute or relative) and an
    # attribute of an imported module; a module's own private names are its own business.
    probe = tmp_path / "probe.py"
    probe.write_text("from airgate.runtime.clock import _aware\n"
                     "from ..runtime.clock import _aware as a\n"
                     "from airgate.runtime import clock as c\n"
                     "import airgate.runtime.clock as k\n"
                     "x = c._aware, k._aware, c.format_time\n"
                     "from airgate.engine.probe import _mine\n", encoding="utf-8")
    assert private_imports(probe, "airgate.engine.probe") == [
        "probe.py:1: airgate.runtime.clock._aware",
        "probe.py:2: airgate.runtime.clock._aware",
        "probe.py:5: airgate.runtime.clock._aware",
        "probe.py:5: airgate.runtime.clock._aware",
    ]


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_says_what_it_owns_and_may_use(stage: str) -> None:
    init = SRC / stage / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    assert "May use" in doc or stage == "cli", doc
    assert len(doc.splitlines()) >= 3


def test_tests_mirror_the_package() -> None:
    for stage in STAGES:
        assert list((ROOT / "tests" / stage).glob("test_*.py")), f"tests/{stage}/ has no tests"


def test_tests_import_their_helpers_as_one_module() -> None:
    # pythonpath = ["tests"]: `runtime_helpers` and `tests.runtime_helpers` would be two
    # modules with two PostgreSQL session databases, one of them never dropped.
    found = [f"{p.relative_to(ROOT)}:{n}" for p in sorted((ROOT / "tests").rglob("*.py"))
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if line.lstrip().startswith(("from tests.", "import tests."))]
    assert found == []
