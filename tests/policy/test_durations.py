from __future__ import annotations

import pytest

from airgate.policy.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h", 3600), ("7d", 604800), ("2w", 1209600)],
)
def test_durations_parse_and_print_back(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "7", "0h", "1.5h", "-1d", "1y", "1 h", "01h", "h"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="malformed duration"):
        parse_duration(text)
