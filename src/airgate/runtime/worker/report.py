"""What a worker reports and how it names itself and waits between tries."""

from __future__ import annotations

import os
import random
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from airgate.runtime.records import COMPLETED, RUNNING, ActionRecord

UNITS = ("execute", "undo", "revert", "expire", "reconcile")
BACKOFF_BASE = 0.2
BACKOFF_CAP = 10.0


def default_worker_id() -> str:
    """``host:pid:random``: unique among the workers of one store, readable in the ledger."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def backoff(attempt: int) -> float:
    """Seconds to wait before try ``attempt + 1``: exponential, capped, with jitter so that
    workers hit by one server restart do not all come back in the same instant."""
    return float(min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt) * random.uniform(0.5, 1.0))


@dataclass
class WorkReport:
    """What one pass (``run_once``) did: the action ids of each unit kind, every unit's
    outcome, and how many database faults it retried or gave up on."""

    units: list[dict[str, Any]] = field(default_factory=list)
    retried: int = 0
    errors: int = 0

    def ids(self, kind: str) -> list[int]:
        return [u["action_id"] for u in self.units if u["unit"] == kind]

    def as_dict(self) -> dict[str, Any]:
        return {**{kind: self.ids(kind) for kind in UNITS},
                "units": [dict(u) for u in self.units],
                "retried": self.retried, "errors": self.errors}


def outcome(kind: str, done: ActionRecord) -> str:
    """A unit's outcome for logs: the action's status, ``unknown`` for a run left running,
    ``failed`` for an undo that left the effect in place."""
    if done.status == RUNNING:
        return "unknown"
    if kind in ("undo", "revert") or done.operation == "undo":
        return "failed" if done.status == COMPLETED else done.status
    return done.status


def ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def short(exc: BaseException) -> str:
    """An error for a log line: its message (the store's already mask passwords), one line."""
    text = str(exc) or type(exc).__name__
    # PostgreSQL's CONTEXT quotes the row a statement wrote (ledger text): not for a log.
    text = text.split("CONTEXT:", 1)[0]
    return " ".join(text.split())[:500]
