"""Import paths that moved, kept working.

airgate 0.1 was one flat package; the stages are subpackages now. Two kinds of
old path keep working:

- names of a former module that is now a package of the same name
  (``airgate.policy``, ``airgate.evidence``, ``airgate.engine``) are looked up in
  the module that holds them now, on first use and without a warning: they are
  the documented API;
- any other former module (``airgate.queue``, ``airgate.store``...) imports as an
  alias of its new home with a ``DeprecationWarning`` that names the new path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# former module -> the modules that hold its names now (first match wins)
MOVED_MODULES: Mapping[str, Sequence[str]] = {
    "airgate.yamlsrc": ["airgate.policy.yamlsrc"],
    "airgate.jsonsrc": ["airgate.policy.jsonsrc"],
    "airgate.schemacheck": ["airgate.policy.schemacheck"],
    "airgate.durations": ["airgate.policy.durations"],
    "airgate.lint": ["airgate.policy.lint", "airgate.checks.validate"],
    "airgate.analysis": ["airgate.checks.analysis"],
    "airgate.report": ["airgate.checks.report"],
    "airgate.testsuite": ["airgate.checks.suites"],
    "airgate.policytest": ["airgate.checks.runner", "airgate.checks.suites"],
    "airgate.testreport": ["airgate.checks.results"],
    "airgate.diff": ["airgate.checks.diff"],
    "airgate.evidence_docs": ["airgate.evidence.documents"],
    "airgate.evidence_native": ["airgate.evidence.native"],
    "airgate.graph": ["airgate.evidence.graph"],
    "airgate.conditions": ["airgate.engine.conditions"],
    "airgate.decide": ["airgate.engine.decide"],
    "airgate.explain": ["airgate.engine.explain"],
    "airgate.durable_engine": ["airgate.engine.durable"],
    "airgate.decision_json": ["airgate.engine.decision_json"],
    "airgate.streaming": ["airgate.engine.streaming"],
    "airgate.records": ["airgate.runtime.records"],
    "airgate.clock": ["airgate.runtime.clock"],
    "airgate.config": ["airgate.runtime.config"],
    "airgate.ledger": ["airgate.runtime.ledger"],
    "airgate.investigations": ["airgate.runtime.investigations"],
    "airgate.executor": ["airgate.runtime.executors"],
    "airgate.store": ["airgate.runtime.store"],
    "airgate.store_schema": ["airgate.runtime.store.schema"],
    "airgate.store_tx": ["airgate.runtime.store.tx"],
    "airgate.queue": ["airgate.runtime.queue", "airgate.runtime.context"],
    "airgate.submit": ["airgate.runtime.submit"],
    "airgate.approvals": ["airgate.runtime.approvals", "airgate.runtime.guards"],
    "airgate.undo": ["airgate.runtime.undo"],
}


def lazy_names(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that finds ``names`` (name -> module) on first use."""

    def __getattr__(name: str) -> Any:
        home = names.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(home), name)

    return __getattr__


class _Alias(types.ModuleType):
    """A former module: its names come from the modules that hold them now."""

    def __init__(self, name: str, homes: Sequence[types.ModuleType]) -> None:
        super().__init__(name, f"Moved: import from {homes[0].__name__}.")
        self.__dict__["homes"] = tuple(homes)

    def _homes(self) -> tuple[types.ModuleType, ...]:
        homes: tuple[types.ModuleType, ...] = self.__dict__.get("homes", ())
        return homes

    def __getattr__(self, name: str) -> Any:
        homes = self._homes()
        for home in homes:
            if hasattr(home, name):
                return getattr(home, name)
        where = homes[0].__name__ if homes else "?"
        raise AttributeError(
            f"module {self.__name__!r} moved to {where!r}, which has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        # monkeypatch.setattr(airgate.store, ...) must reach the module that reads it
        for home in self._homes():
            if hasattr(home, name):
                setattr(home, name, value)
                return
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return sorted({n for home in self._homes() for n in dir(home)})


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports a former module path as an alias of its new home, with a warning."""

    def find_spec(self, fullname: str, path: Any = None,
                  target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED_MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        homes = [importlib.import_module(m) for m in MOVED_MODULES[spec.name]]
        warnings.warn(
            f"{spec.name} moved to {homes[0].__name__}: import it from there"
            " (the old path will be removed)", DeprecationWarning, stacklevel=2)
        return _Alias(spec.name, homes)

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def install() -> None:
    """Put the finder on ``sys.meta_path`` once (``import airgate`` does it)."""
    if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
