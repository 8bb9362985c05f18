"""Plain-text tables for the terminal, safe for attacker-controlled values.

Evidence fields come from attackers (file names, subjects, command lines). A
value must never move the cursor, recolour the terminal, forge a line or
reorder text, so every control character, escape sequence and bidirectional
override is shown as a visible escape instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# C0 controls (tab and newline included), DEL, C1 controls, bidi overrides and
# isolates, zero-width and line/paragraph separators.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}
# The same but line ends: for formats that encode those themselves.
_UNSAFE_INLINE = re.compile(
    "[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e"
    "\u2066-\u2069\ufeff]"
)


def _replace(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(value: object) -> str:
    """A value as one printable line: control characters and escapes made visible."""
    text = value if isinstance(value, str) else str(value)
    text = text.replace("\\", "\\\\") if _UNSAFE.search(text) else text
    return _UNSAFE.sub(_replace, text)


def escape_keeping_line_ends(text: str) -> str:
    """:func:`escape`, but CR and LF stay as they are (the caller's format encodes them)."""
    text = text.replace("\\", "\\\\") if _UNSAFE_INLINE.search(text) else text
    return _UNSAFE_INLINE.sub(_replace, text)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns aligned on the widest cell; every cell escaped."""
    cells = [[escape(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)
