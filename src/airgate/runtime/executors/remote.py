"""Builds the executors that call Microsoft's APIs; without ``httpx`` and ``msal``
installed they answer a clear failure instead (``pip install 'airgate[executors]'``)."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

from airgate.runtime.executors.base import ExecRequest, ExecResult, Executor


class _NotInstalled:
    def __init__(self, name: str, timeout: float, missing: str) -> None:
        self.name = name
        self.timeout = timeout
        self.missing = missing

    def plan(self, request: ExecRequest) -> str:
        return self.run(request).message

    def run(self, request: ExecRequest) -> ExecResult:
        return ExecResult(False, None, f"the {self.name} executor needs {self.missing}: pip"
                          " install 'airgate[executors]'", self.name)


def missing_modules() -> list[str]:
    """The modules the Microsoft executors need that are not installed."""
    return [name for name in ("httpx", "msal") if importlib.util.find_spec(name) is None]


def remote_executor(kind: str, options: Mapping[str, Any], timeout: float) -> Executor:
    missing = missing_modules()
    if missing:
        return _NotInstalled(kind, timeout, " and ".join(missing))
    if kind == "defender_endpoint":
        from airgate.runtime.executors.defender import defender_executor

        return defender_executor(options, timeout)
    from airgate.runtime.executors.graph import graph_email_executor, graph_identity_executor

    if kind == "graph_email":
        return graph_email_executor(options, timeout)
    return graph_identity_executor(options, timeout)
