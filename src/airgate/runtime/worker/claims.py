"""How a worker claims one unit: which kinds, in which order, and what a claim writes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airgate.runtime import undo
from airgate.runtime.clock import format_time
from airgate.runtime.context import RECONCILE_GRACE
from airgate.runtime.ledger import fold
from airgate.runtime.records import (
    APPROVED,
    AUTOMATION,
    COMPLETED,
    RUNNING,
    SYSTEM,
    ActionRecord,
    LedgerEvent,
)

if TYPE_CHECKING:
    from airgate.runtime.context import Runtime
    from airgate.runtime.store import Tx


@dataclass(frozen=True)
class Claim:
    """One unit a worker holds: the action (already running), on whose behalf it runs,
    and whether this is a takeover or retry (``reconcile``: ask under the same key)."""

    kind: str
    action: ActionRecord
    actor: str
    reconcile: bool = False
    event_done: str | None = None
    attempt: int = 1


def claim_next(queue: Runtime, worker_id: str, lease_seconds: float) -> Claim | None:
    """Claim the next runnable unit in one write transaction (None: nothing is due).

    Tried in this order: an undo request, an approved action, a due revert, a run left
    behind (its lease run out, or unleased past the executor's time-out and the grace).
    The action moves on with its ledger entry, and a lease names ``worker_id`` until
    ``lease_seconds`` from now."""
    now = queue.now()
    at = format_time(now)
    with queue.store.read() as tx:
        if not tx.work_waiting(at, format_time(now - dt.timedelta(seconds=RECONCILE_GRACE))):
            return None  # the idle case: one read, no write lock
    until = format_time(now + dt.timedelta(seconds=lease_seconds))
    with queue.store.write() as tx:
        stale = tx.stale_requests()
        tx.drop_requests(stale)
        kinds: tuple[Callable[[], Claim | None], ...] = (
            lambda: _undo(queue, tx, at), lambda: _approved(queue, tx, at),
            lambda: _revert(queue, tx, at), lambda: _stale(queue, tx, now, at))
        for kind in kinds:  # one unit per claim, tried in this order
            claim = kind()
            if claim is not None:
                attempt = tx.take_lease(claim.action.id, worker_id, until, at)
                current = tx.get_action(claim.action.id)
                assert current is not None
                return Claim(claim.kind, current, claim.actor, claim.reconcile,
                             claim.event_done, attempt)
    return None


def _undo(queue: Runtime, tx: Tx, at: str) -> Claim | None:
    for a, _ in tx.undo_requests(5):
        # The request row is a copy: the ledger must hold the request it stands for.
        who = fold(a.id, tx.ledger_for(a.id)).undo_requested
        if who is None:
            tx.drop_requests([a.id])
            tx.log(LedgerEvent("refused", SYSTEM, a.id, a.status, a.status,
                               "not run: the ledger holds no undo request for it",
                               {"attempt": "undo"}), at)
            continue
        undo.start_undo(queue, tx, [a], who, None, at)
        return Claim("undo", a, who)
    return None


def _approved(queue: Runtime, tx: Tx, at: str) -> Claim | None:
    for a in tx.approved_waiting(1):
        state = fold(a.id, tx.ledger_for(a.id))
        actor = AUTOMATION if state.automatic or not state.approvers else (
            state.approvers[-1][0])
        start = queue.start_changes(a, "apply", at)
        queue.change(tx, a, start)
        tx.log(LedgerEvent("started", actor, a.id, APPROVED, RUNNING, None,
                           {"operation": "apply", "idempotency_key": start["run_key"]}), at)
        return Claim("execute", a, actor)
    return None


def _revert(queue: Runtime, tx: Tx, at: str) -> Claim | None:
    for a in tx.due_locked("revert_at", COMPLETED, at, limit=5):
        if a.undoable:
            undo.start_undo(queue, tx, [a], AUTOMATION, "revert_after elapsed", at)
            return Claim("revert", a, AUTOMATION, event_done="reverted")
    return None


def _stale(queue: Runtime, tx: Tx, now: dt.datetime, at: str) -> Claim | None:
    for a, lease in tx.running_claimable(at):
        # Started inline (no lease) by a process that may still be running it: wait as
        # `tick` does, the executor's time-out and a grace period.
        if lease is None and (a.started_at is None or a.started_at > format_time(
                now - queue.reconcile_wait(a.action_type))):
            continue
        return Claim("reconcile", a, SYSTEM, reconcile=True)
    return None
