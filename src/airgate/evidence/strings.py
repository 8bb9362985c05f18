"""Strings no UTF-8 output or PostgreSQL text can hold: kept as visible escapes.

JSON's ``\\ud800`` and ``\\u0000`` and YAML's ``"\\0"`` decode to a lone surrogate or a
NUL, which valid UTF-8 cannot encode (every write of them failed) and PostgreSQL
text refuses. Evidence keeps them, written as the six characters ``\\ud800`` and
``\\u0000``, with one warning per document: refusing the document instead would let
whoever names a file or writes a subject veto the remediation of the whole alert
(and, in NDJSON, stop the run for every alert after it). Surrogate pairs that YAML
gives as two escapes are joined into their character first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from airgate.errors import EvidenceError, Finding, Location

Path = tuple[str | int, ...]

# The only ways such a character reaches a parsed document (raw ones fail decoding
# first): cheap to search for, so clean documents pay for one regex scan only.
JSON_HINT = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
YAML_HINT = re.compile(r"\\(?:0|x00|u0000|U00000000|u[dD][89a-fA-F]|U0000[dD][89a-fA-F])")

_BAD = re.compile("[\x00\ud800-\udfff]")


def _visible(char: re.Match[str]) -> str:
    return f"\\u{ord(char.group()):04x}"


def _fixed(text: str) -> str:
    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return _BAD.sub(_visible, text)


def scrub(data: Any, locate: Callable[[Path], Location], warn: Callable[[Finding], None],
          file: str) -> Any:
    """``data`` with every lone surrogate and NUL in its strings and keys escaped, and a
    warning at the first one when there was any."""
    found: list[Path] = []

    def walk(value: Any, path: Path) -> Any:
        if isinstance(value, str):
            if _BAD.search(value):
                found.append(path)
                return _fixed(value)
            return value
        if isinstance(value, list):
            return [walk(item, (*path, i)) for i, item in enumerate(value)]
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                clean = key
                if _BAD.search(key):
                    clean = _fixed(key)
                    found.append((*path, clean))  # a path fit for JSON output too
                if clean in out:
                    raise EvidenceError(
                        f"duplicate key {clean!r} (once its NUL or lone surrogate is escaped)",
                        locate(path), code="duplicate-key")
                out[clean] = walk(item, (*path, clean))
            return out
        return value

    cleaned = walk(data, ())
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        warn(Finding(
            "warning", "escaped-character",
            f"a string holds a NUL or a lone UTF-16 surrogate{more}: kept, with each such"
            " character written as \\uXXXX", locate(found[0]) if found[0] else Location(file)))
    return cleaned


__all__ = ["JSON_HINT", "YAML_HINT", "scrub"]
