"""airgate: a declarative policy engine for automated investigation and response.

The library is usable without the command line::

    import airgate
    policies = airgate.load_policy_set(["policies/"])
    engine = airgate.compile(policies)
    for decision in engine.evaluate(airgate.load_evidence("examples/graph-alert.json")):
        print(decision.entity.name, decision.action, decision.approval.required)

Importing airgate loads neither click nor the database layer.
"""

from __future__ import annotations

from typing import Any

from airgate import compat
from airgate.errors import AirgateError, Finding, InputError, Location, PolicyError
from airgate.model import Approval, Decision, EntityRef, Evidence, PolicySet, Rule

__version__ = "0.1.0"

compat.install()  # old module paths (airgate.queue, ...) keep working, with a warning

# Heavier entry points load on first use, so ``import airgate`` stays cheap.
_LAZY = {
    "load_policy_set": ("airgate.policy.loader", "load_policy_set"),
    "load_policy_text": ("airgate.policy.loader", "load_policy_text"),
    "validate_paths": ("airgate.checks.validate", "validate_paths"),
    "load_evidence": ("airgate.evidence.reader", "load_evidence"),
    "iter_evidence": ("airgate.evidence.reader", "iter_evidence"),
    "compile": ("airgate.engine.core", "compile"),
    "Engine": ("airgate.engine.core", "Engine"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        return getattr(importlib.import_module(module_name), attr)
    raise AttributeError(f"module 'airgate' has no attribute {name!r}")


__all__ = [
    "AirgateError", "Approval", "Decision", "EntityRef", "Evidence", "Finding", "InputError",
    "Location", "PolicyError", "PolicySet", "Rule", *_LAZY,
]
