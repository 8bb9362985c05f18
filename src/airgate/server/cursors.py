"""Opaque page cursors: the (time, id) of the last row of a page, base64url JSON.

A cursor is the filter's ``after`` key, not a secret or a signature: altering one only
moves where a page starts, which any filter could do too. A malformed one is 400.
"""

from __future__ import annotations

import base64
import binascii
import json

from airgate.errors import UsageError
from airgate.runtime.records import ActionRecord


def encode(action: ActionRecord, *, by_update: bool) -> str:
    at = action.updated_at if by_update else action.created_at
    raw = json.dumps([at, action.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None) -> tuple[str, int] | None:
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, last = json.loads(raw)
        if (isinstance(at, str) and len(at) <= 40 and isinstance(last, int)
                and not isinstance(last, bool) and 0 <= last < 2**31):
            return at, last
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        pass
    raise UsageError("malformed cursor: pass the next_cursor of the previous page as it is")
