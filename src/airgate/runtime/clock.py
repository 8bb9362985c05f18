"""One injectable clock for the runtime: real UTC time, or a fixed clock tests can move.

Every timestamp the queue and the ledger write comes from a ``Clock``, so a test
can pass a week (expiry), an hour (deduplication) or a day (timed revert) in a
line. The CLI reads ``AIRGATE_NOW`` (ISO 8601, e.g. ``2024-05-01T12:00:00Z``)
and, when it is set, runs on that fixed time: for tests and demos only, so the
CLI honours it only on a store created for demos (``airgate init --demo``).

Every time airgate accepts lies between 2000 and 2200: a week or a day added to
it stays far inside ``datetime``'s range, so no command can overflow.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from typing import Protocol

from airgate.errors import UsageError

UTC = dt.UTC
ENV_NOW = "AIRGATE_NOW"
# The sane range of any time airgate takes in (a pinned clock, --since): an expiry or a
# revert added to it must never leave datetime's range (year 9999).
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=UTC)


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real time."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)


class FixedClock:
    """A clock that stands still until told to move."""

    def __init__(self, at: dt.datetime | str) -> None:
        self._now = parse_time(at) if isinstance(at, str) else _aware(at)

    def now(self) -> dt.datetime:
        return self._now

    def set(self, at: dt.datetime | str) -> None:
        self._now = parse_time(at) if isinstance(at, str) else _aware(at)

    def advance(self, seconds: float = 0, **delta: float) -> dt.datetime:
        """Move forward by ``seconds`` (or ``hours=``, ``days=``...); returns the new time."""
        self._now += dt.timedelta(seconds=seconds, **delta)
        return self._now


def _aware(value: dt.datetime) -> dt.datetime:
    # A naive datetime is taken as UTC: the runtime never uses local time.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_time(text: str) -> dt.datetime:
    """Parse an ISO 8601 time (``Z`` allowed; a bare date means midnight UTC)."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            value = dt.datetime.combine(dt.date.fromisoformat(raw), dt.time())
        else:
            value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"malformed time {text!r}: write ISO 8601, like 2024-05-01T12:00:00Z"
        ) from None
    try:
        value = _aware(value)
    except OverflowError:  # 0001-01-01T00:00+01:00 leaves the range when moved to UTC
        value = EARLIEST - dt.timedelta(days=1)
    if not EARLIEST <= value < LATEST:
        raise UsageError(
            f"time {text!r} is out of range: airgate takes times from"
            f" {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}")
    return value


def format_time(value: dt.datetime) -> str:
    """The one stored spelling of a time: fixed width, UTC, microseconds, so text sorts as time."""
    return _aware(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def time_after(moment: dt.datetime, seconds: int) -> str:
    """The stored spelling of ``seconds`` after ``moment``.

    A policy may name a duration of up to 999,999,999 weeks: past the end of year 9999
    it is the last time there is (in effect never), not an OverflowError halfway
    through a submit or after an executor already acted.
    """
    try:
        return format_time(moment + dt.timedelta(seconds=seconds))
    except OverflowError:
        return format_time(dt.datetime.max.replace(tzinfo=UTC))


def parse_stored_time(text: str) -> dt.datetime:
    """The inverse of :func:`format_time`."""
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def pinned_time(environ: Mapping[str, str] | None = None) -> dt.datetime | None:
    """The time ``AIRGATE_NOW`` pins (checked for range), or None when it is not set."""
    env = os.environ if environ is None else environ
    value = env.get(ENV_NOW, "").strip()
    return parse_time(value) if value else None


def clock_from_env(environ: Mapping[str, str] | None = None) -> Clock:
    """``FixedClock(AIRGATE_NOW)`` when that variable is set, else the system clock.

    Whether a pinned clock may be used on a given store is the caller's question
    (the CLI allows it only on a demo store); this only reads the variable.
    """
    at = pinned_time(environ)
    return SystemClock() if at is None else FixedClock(at)
