"""How long an HTTP answer asks to be left alone (``Retry-After``), for every executor and
the notifier that retry: one reading of the header, each caller its own cap and backoff."""

from __future__ import annotations

import email.utils
import time


def retry_after(value: str | None, cap: float) -> float | None:
    """Seconds a ``Retry-After`` value (seconds or an HTTP date) asks for, at most ``cap``;
    None when there is none or it cannot be read (the caller then backs off its own way)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), cap)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return min(max(when - time.time(), 0.0), cap)
