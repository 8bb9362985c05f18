"""Retry-After, read once for the Microsoft executors, the http executor and the notifier."""

from __future__ import annotations

import email.utils
import time

import pytest

from airgate.runtime.executors.retry import retry_after


@pytest.mark.parametrize(("value", "cap", "expected"), [
    ("7", 60.0, 7.0),
    (" 120 ", 60.0, 60.0),                       # capped
    ("Wed, 21 Oct 2015 07:28:00 GMT", 60.0, 0.0),  # a date gone by: retry now
    ("soon", 60.0, None),                         # unreadable: the caller backs off
    ("", 60.0, None),
    (None, 60.0, None),
    ("Fri, 31 Dec 99999 23:59:59 GMT", 60.0, None),  # a year no clock can hold
])
def test_retry_after_reads_seconds_and_dates_within_the_cap(value, cap, expected):
    assert retry_after(value, cap) == expected


def test_a_date_ahead_is_the_wait_until_then():
    ahead = email.utils.formatdate(time.time() + 20, usegmt=True)
    assert 15 <= retry_after(ahead, 60.0) <= 20  # type: ignore[operator]
    assert retry_after(ahead, 5.0) == 5.0
