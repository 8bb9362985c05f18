"""Records of the runtime: queued actions, their states, ledger entries.

Kept apart from the store so that the queue logic and the CLI can use them
without importing the database layer.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from airgate.errors import TransitionError

PENDING = "pending"
APPROVED = "approved"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
REJECTED = "rejected"
EXPIRED = "expired"
DEDUPLICATED = "deduplicated"
UNDONE = "undone"
SUPERSEDED = "superseded"

STATUSES = (
    PENDING, APPROVED, RUNNING, COMPLETED, FAILED, REJECTED, EXPIRED, DEDUPLICATED, UNDONE,
    SUPERSEDED,
)
OPEN = (PENDING, APPROVED, RUNNING)
SETTLED = tuple(s for s in STATUSES if s not in OPEN)
CARRIED_OUT = (COMPLETED, DEDUPLICATED, UNDONE, SUPERSEDED)

# The state machine. ``running`` carries an operation (apply or undo): an undo
# runs from completed through running back to undone (or to completed if the
# undo failed), so a crash in either direction is reconciled the same way.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    PENDING: frozenset({PENDING, APPROVED, REJECTED, EXPIRED, DEDUPLICATED}),
    APPROVED: frozenset({RUNNING}),
    RUNNING: frozenset({COMPLETED, FAILED, UNDONE}),
    COMPLETED: frozenset({RUNNING, SUPERSEDED}),
    UNDONE: frozenset({SUPERSEDED}),
    FAILED: frozenset({SUPERSEDED}),
    REJECTED: frozenset({SUPERSEDED}),
    EXPIRED: frozenset({SUPERSEDED}),
    DEDUPLICATED: frozenset(),
    SUPERSEDED: frozenset(),
}


def check_transition(action: ActionRecord, target: str, verb: str) -> None:
    """Raise TransitionError unless ``action`` may move to ``target``."""
    if target not in TRANSITIONS.get(action.status, frozenset()):
        raise TransitionError(
            f"cannot {verb} action {action.id} ({action.action_type} on {action.entity_name}):"
            f" it is {action.status}"
        )

# Ledger event names.
EVENTS = (
    "created", "merged", "approved", "rejected", "expired", "deduplicated", "started",
    "completed", "failed", "undone", "superseded", "refused", "reverted", "reconciled",
    "outcome_unknown",  # an executor's request got no answer: the action stays running
    "requested",  # execution: worker: an undo asked for, that a worker carries out
    "initialized", "configured",  # store-wide, no action: a demo store; a pushed config
    "token_created", "token_revoked",  # store-wide: an API token (id and prefix, never it)
)

# What every ledger entry written in this context carries in its details besides its own:
# a worker sets {"worker": its id}, so the ledger says which worker ran what. Each thread
# starts with an empty context, so one worker thread's stamp never marks another's entries.
LEDGER_STAMP: ContextVar[Mapping[str, Any] | None] = ContextVar("airgate_ledger_stamp",
                                                                default=None)


@contextmanager
def stamped(extra: Mapping[str, Any]) -> Iterator[None]:
    """Add ``extra`` to the details of every ledger entry written inside the block."""
    token = LEDGER_STAMP.set({**(LEDGER_STAMP.get() or {}), **extra})
    try:
        yield
    finally:
        LEDGER_STAMP.reset(token)


AUTOMATION = "automation"  # the actor of automatic approvals and timed reverts
SYSTEM = "system"  # the actor of expiry and reconciliation


@dataclass(frozen=True)
class ActionRecord:
    """One action in the queue, as stored."""

    id: int
    investigation: str
    entity_type: str
    entity_key: str
    entity_name: str
    action_type: str
    status: str
    version: int
    source: str
    rules: tuple[str, ...]
    approval: Mapping[str, Any]
    created_at: str
    updated_at: str
    submitted_by: str
    entity_hash: str | None = None
    reasons: tuple[str, ...] = ()
    undo: Mapping[str, Any] | None = None
    revert_after: int | None = None
    revert_at: str | None = None
    max_automatic_per_hour: int | None = None
    expires_at: str | None = None
    approved_at: str | None = None
    decided_by: str | None = None
    decided_at: str | None = None
    reason: str | None = None
    link_id: int | None = None
    superseded_by: int | None = None
    operation: str | None = None
    run_key: str | None = None
    started_at: str | None = None
    result: Any = None
    error: str | None = None

    @property
    def undoable(self) -> bool:
        return self.undo is not None

    @property
    def primary_rule(self) -> str:
        return self.rules[0] if self.rules else ""

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["rules"] = list(self.rules)
        out["reasons"] = list(self.reasons)
        out["approval"] = dict(self.approval)
        out["undo"] = dict(self.undo) if self.undo is not None else None
        out["undoable"] = self.undoable
        return out


@dataclass(frozen=True)
class LedgerEvent:
    """A ledger entry before it is chained: what happened to which action, by whom."""

    event: str
    actor: str
    action_id: int | None = None
    state_before: str | None = None
    state_after: str | None = None
    comment: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LedgerEntry:
    """A chained ledger entry, as stored."""

    seq: int
    at: str
    event: str
    actor: str
    action_id: int | None
    state_before: str | None
    state_after: str | None
    comment: str | None
    details: Mapping[str, Any]
    prev_hash: str
    hash: str

    def content(self) -> dict[str, Any]:
        """What the hash covers: every field but the hash itself."""
        return {
            "seq": self.seq, "at": self.at, "event": self.event, "actor": self.actor,
            "action_id": self.action_id, "state_before": self.state_before,
            "state_after": self.state_after, "comment": self.comment,
            "details": dict(self.details), "prev_hash": self.prev_hash,
        }

    def as_dict(self) -> dict[str, Any]:
        out = self.content()
        out["hash"] = self.hash
        return out


@dataclass(frozen=True)
class ActionFilter:
    """What ``actions`` and ``history`` select; empty fields select everything."""

    statuses: tuple[str, ...] = ()
    investigation: str | None = None
    action_type: str | None = None
    source: str | None = None
    since: str | None = None  # stored time: created (actions) or last changed (history)
    decided_by: str | None = None
    limit: int | None = None
    newest_first: bool = False
    by_update: bool = False  # order and ``since`` by the last change instead of creation
    until: str | None = None  # stored time, exclusive: the end of a time range (the web tabs)
    # Keyset pagination: only rows after this one in the order above, named by its
    # (updated_at, id) when ``by_update``, else by (created_at, id); the time is ignored
    # in id order. The server's cursors are these.
    after: tuple[str, int] | None = None
