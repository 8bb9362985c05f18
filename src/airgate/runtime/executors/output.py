"""What an executor reports, made storable: strict JSON, else escaped text; never a crash.

An executor's report arrives after its effect has happened, so nothing in it may
stop the outcome from being recorded: a value the ledger cannot hash or a
database cannot hold (NaN, infinity, a lone surrogate, a NUL in a plain text
column, nesting deeper than a JSON encoder recurses) is kept as text instead.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

# Deeper than any report needs, far below where Python's JSON encoders recurse too deep.
MAX_DEPTH = 64
MAX_TEXT = 64 * 1024  # characters kept of a value that is not storable as it is
_SURROGATE = re.compile("[\ud800-\udfff]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")
    return out


def parse_strict_json(text: str) -> Any:
    """``text`` as strict JSON (RFC 8259: no NaN or infinity, no duplicate keys) whose value
    can be stored and hashed as it is; ``ValueError`` otherwise."""
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite,
                           object_pairs_hook=_unique)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    problem = unstorable(value)
    if problem:
        raise ValueError(problem)
    return value


def unstorable(value: Any) -> str | None:
    """Why ``value`` cannot be stored as JSON and hashed as it is, or None when it can."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return "a lone surrogate in a string"
        elif isinstance(item, bool) or item is None or isinstance(item, int):
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"{item} is not JSON"
        elif isinstance(item, Mapping):
            for key, inner in item.items():
                if not isinstance(key, str):
                    return f"a {type(key).__name__} key"
                stack.append((key, depth + 1))
                stack.append((inner, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((inner, depth + 1) for inner in item)
        else:
            return f"a {type(item).__name__} value"
    return None


def storable_text(text: object) -> str:
    """``text`` as a string any store keeps: lone surrogates and NUL shown as escapes."""
    value = text if isinstance(text, str) else str(text)
    if _SURROGATE.search(value):
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    # PostgreSQL text columns refuse NUL.
    return value.replace("\x00", "\\x00")


def storable_output(value: Any) -> Any:
    """``value`` if it is storable as it is, else its text under ``"unstorable"``."""
    problem = unstorable(value)
    if problem is None:
        return value
    try:
        text = repr(value)
    except RecursionError:
        text = f"<a {type(value).__name__} nested too deeply to show>"
    return {"unstorable": storable_text(text[:MAX_TEXT]), "why": problem}
