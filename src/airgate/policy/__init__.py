"""Stage 1, the policy language: from YAML files to the frozen :mod:`airgate.model`.

- ``yamlsrc.py`` and ``jsonsrc.py``: strict YAML and JSON sources that keep every
  value's line and column (evidence readers use them too);
- ``loader.py``: find policy files, parse, check, build the ``PolicySet``;
- ``tree.py``: walk a policy or suite directory, links followed, nothing skipped
  silently;
- ``schemacheck.py``: JSON Schema errors at their YAML position;
- ``lint.py``: checks of meaning (unknown actions, verdicts, roles, bad globs...),
  findings as values; ``durations.py``: ``7d``, ``1h30m``.

A new operator is spelled here (``model.OPERATORS`` and lint) and evaluated in
``airgate.engine.conditions``.

May use: the shared leaves (errors, model, catalog, render). Never evidence,
the engine, the runtime or click.

``from airgate.policy import load_policy_set`` (and the loader's other names)
keeps working: they are looked up in ``loader.py`` on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airgate.compat import lazy_names

if TYPE_CHECKING:
    from airgate.policy.loader import (
        OTHER_KINDS,
        POLICY_SUFFIXES,
        Analysis,
        analyze_paths,
        approval_from,
        build_policy_set,
        load_policy_set,
        load_policy_text,
        policy_schema,
    )

__all__ = ["OTHER_KINDS", "POLICY_SUFFIXES", "Analysis", "analyze_paths", "approval_from",
           "build_policy_set", "load_policy_set", "load_policy_text", "policy_schema"]
__getattr__ = lazy_names(__name__, dict.fromkeys(__all__, "airgate.policy.loader"))
