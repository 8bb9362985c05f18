"""Durations as policy authors write them: ``90s``, ``15m``, ``1h``, ``7d``."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^([1-9][0-9]{0,8})([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_PATTERN = _DURATION.pattern


def parse_duration(text: str) -> int:
    """Seconds in a duration string; raises ValueError with a readable message."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"malformed duration {text!r}: write a positive whole number and a unit"
            " (s, m, h, d or w), like 90s, 15m, 1h, 7d"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_duration(seconds: int) -> str:
    """The shortest exact spelling of a number of seconds."""
    for unit in ("w", "d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
