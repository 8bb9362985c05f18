"""Stage 3, the engine: a compiled policy set turns evidence into decisions.

- ``compiled.py``: the policy set compiled once (predicates, catalog entries,
  approvals, live exclusions), shared by every matcher;
- ``core.py``: ``compile()``, the ``Engine`` and airgate's indexed matcher;
  ``durable.py``: the durable-rules matcher, the optional twin that checks it;
- ``conditions.py``: every operator of ``where``, compiled to predicates and
  traced for ``--explain`` (a new operator is evaluated here);
- ``decide.py``: merging, approval strength, exclusions, automation levels;
- ``explain.py``: why each condition held or failed, nearest rules;
- ``decision_json.py``: the stable JSON form of a decision, fast encoders;
- ``streaming.py``: NDJSON in, NDJSON out, on one process or several.

May use: evidence, policy and the shared leaves. Never the runtime, the store,
SQLAlchemy or click.

``from airgate.engine import compile, Engine, decision_to_dict`` keeps working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airgate.compat import lazy_names

if TYPE_CHECKING:
    from airgate.engine.compiled import CompiledPolicy, compile_policy
    from airgate.engine.core import ENGINES, Batch, Engine, IndexedMatcher, Matcher, compile
    from airgate.engine.decision_json import decision_to_dict

_HOMES = {
    **dict.fromkeys(["ENGINES", "Batch", "Engine", "IndexedMatcher", "Matcher", "compile"],
                    "airgate.engine.core"),
    "CompiledPolicy": "airgate.engine.compiled",
    "compile_policy": "airgate.engine.compiled",
    "decision_to_dict": "airgate.engine.decision_json",
}
__all__ = ["ENGINES", "Batch", "CompiledPolicy", "Engine", "IndexedMatcher", "Matcher", "compile",
           "compile_policy", "decision_to_dict"]
__getattr__ = lazy_names(__name__, _HOMES)
