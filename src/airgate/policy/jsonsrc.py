"""JSON with strict keys, and line and column for any part of it when an error needs them.

Parsing uses the C ``json`` decoder (fast); only when an error must be located
do we walk the text again in Python to find where each value stands.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import math
import re
import sys
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

from airgate.errors import EvidenceError, Location
from airgate.policy.yamlsrc import Document, Path

_WS = re.compile(r"[ \t\n\r]*")
_SCALAR = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null")


class DuplicateKey(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise DuplicateKey("duplicate key")
    return out


class NonFinite(ValueError):
    pass


def _constant(name: str) -> Any:
    # Python's decoder accepts NaN and Infinity, which are not JSON: letting them in
    # would make airgate's own JSON output invalid further down the line.
    raise NonFinite(name)


def _float(literal: str) -> float:
    value = float(literal)
    if value in (math.inf, -math.inf):
        # 1e400 is valid JSON but no double holds it: Python reads it as infinity,
        # which airgate's JSON output would then print as the non-JSON Infinity.
        raise NonFinite(literal)
    return value


DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_constant,
                           parse_float=_float)

# A JSON string or a bare token: matching whole strings first keeps a "NaN" or a
# "1e400" inside a string from being taken for the number that failed.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|-?\b(?:NaN|Infinity)\b|-?[0-9][0-9.eE+-]*')


def _is_non_finite(token: str) -> bool:
    if token.startswith('"'):
        return False
    try:
        return not math.isfinite(float(token))
    except ValueError:
        return False


def non_finite(text: str, file: str, line: int = 1) -> EvidenceError:
    """The error for NaN, Infinity or a number too large for a double (1e400) in a JSON
    text, located at its first occurrence; ``line``: the text's first."""
    found = next((m for m in _TOKEN.finditer(text) if _is_non_finite(m.group())), None)
    at = found.start() if found else 0
    before = text[:at]
    loc = Location(file, line + before.count("\n"), at - (before.rfind("\n") + 1) + 1)
    literal = found.group() if found else "NaN"
    if literal.lstrip("-") in ("NaN", "Infinity"):
        message = "invalid JSON: NaN and Infinity are not JSON numbers"
    else:
        shown = literal if len(literal) <= 40 else literal[:37] + "..."
        message = (f"invalid JSON: {shown} is beyond the range of a double (it would be read"
                   " as infinity, which is not a JSON number)")
    return EvidenceError(message, loc, code="json")


_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


# Deeper JSON is refused on every Python: 3.11's decoder stops near 1,000 levels with a
# RecursionError, 3.13's reads tens of thousands, and nothing airgate reads nests so deep.
MAX_JSON_DEPTH = 512


def too_deep_value(text: str, value: Any) -> bool:
    """Whether the decoded ``value`` of ``text`` nests deeper than MAX_JSON_DEPTH.

    Counting brackets first keeps the walk off every ordinary document and line."""
    if text.count("{") + text.count("[") <= MAX_JSON_DEPTH:
        return False
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    return False


def too_deep(text: str, file: str, line: int = 1) -> EvidenceError:
    """The error for a text too deeply nested for the decoder, located at the first
    bracket of its deepest level; ``line``: the text's first."""
    depth = deepest = at = 0
    for match in _BRACKETS.finditer(text):
        char = match.group()
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest, at = depth, match.start()
        elif char in "]}":
            depth -= 1
    before = text[:at]
    loc = Location(file, line + before.count("\n"), at - (before.rfind("\n") + 1) + 1)
    return EvidenceError(f"JSON nesting is too deep ({deepest} levels)", loc,
                         code="too-deep")


def long_number(text: str, file: str, line: int = 1) -> EvidenceError:
    """The error for a text the decoder refused for an integer past Python's digit limit
    (``sys.get_int_max_str_digits()``), located at that number; ``line``: the text's first."""
    limit = sys.get_int_max_str_digits() or 4300
    found = re.search(rf"[0-9]{{{limit + 1},}}", text)
    if found is None:
        return EvidenceError("invalid JSON: a number is too long", Location(file, line),
                             code="too-large")
    before = text[: found.start()]
    start = found.start() - 1 if before.endswith("-") else found.start()
    loc = Location(file, line + before.count("\n"), start - (before.rfind("\n") + 1) + 1)
    return EvidenceError(f"number with {len(found.group())} digits is too long", loc,
                         code="too-large")


def positions(text: str, file: str) -> Document:
    """Marks for every value and key of a JSON text that ``DECODER`` parsed (or that failed
    only on a duplicate key). Raises EvidenceError at a duplicate key."""
    doc = Document(None, file)
    starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def mark(index: int) -> tuple[int, int]:
        line = bisect.bisect_right(starts, index)
        return line, index - starts[line - 1] + 1

    def skip(index: int) -> int:
        return _WS.match(text, index).end()  # type: ignore[union-attr]

    def walk(index: int, path: Path) -> int:
        index = skip(index)
        doc.value_marks.setdefault(path, mark(index))
        char = text[index]
        if char == '"':
            return int(scanstring(text, index + 1)[1])
        if char not in "{[":
            match = _SCALAR.match(text, index)
            if match is None:
                raise ValueError("not JSON")
            return match.end()
        closing = "}" if char == "{" else "]"
        index = skip(index + 1)
        if text[index] == closing:
            return index + 1
        seen: set[str] = set()
        position = 0
        while True:
            index = skip(index)
            if char == "{":
                key_at = index
                key, index = scanstring(text, index + 1)
                child: Path = (*path, key)
                if key in seen:
                    first = doc.key_marks[child][0]
                    raise EvidenceError(
                        f"duplicate key {key!r} (first defined on line {first})",
                        Location(file, *mark(key_at), child),
                        code="duplicate-key",
                    )
                seen.add(key)
                doc.key_marks[child] = mark(key_at)
                index = skip(index) + 1  # the colon
            else:
                child = (*path, position)
                position += 1
            index = skip(walk(index, child))
            if text[index] == ",":
                index += 1
                continue
            return index + 1

    # On a text it cannot follow, keep the marks found so far: locate() falls back to
    # the nearest ancestor.
    with contextlib.suppress(IndexError, ValueError, RecursionError):
        walk(0, ())
    return doc
