"""Approve, reject and expire pending actions, with roles, quorum and refusals.

A refused attempt changes no action, but it is written to the ledger (its own
committed transaction) before PermissionDenied is raised.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airgate.errors import PermissionDenied, UsageError
from airgate.runtime import notify
from airgate.runtime.clock import format_time
from airgate.runtime.guards import check_actor, refuse, role_problem, same_actor, same_type
from airgate.runtime.ledger import ActionLedger, fold, stored_problem
from airgate.runtime.records import (
    APPROVED,
    DEDUPLICATED,
    EXPIRED,
    PENDING,
    REJECTED,
    RUNNING,
    SYSTEM,
    ActionRecord,
    LedgerEvent,
    check_transition,
)

if TYPE_CHECKING:
    from airgate.runtime.context import Runtime
    from airgate.runtime.store import Tx

def approve(queue: Runtime, ids: Iterable[int], *, actor: str,
            comment: str | None = None) -> list[ActionRecord]:
    actor = check_actor(actor)
    now = queue.now()
    at = format_time(now)
    denied: PermissionDenied | None = None
    to_run: list[int] = []
    with queue.store.write() as tx:
        actions = queue.load(tx, ids)
        same_type(actions, "approve")
        for a in actions:
            check_transition(a, APPROVED, "approve")
        # The requirement, the approvers and the status come from the ledger: the columns
        # are a copy anyone with write access to the database can edit.
        states = {a.id: fold(a.id, tx.ledger_for(a.id)) for a in actions}
        refusals = []
        for a in actions:
            why = _approve_problem(queue, a, states[a.id], actor, comment)
            if why:
                refusals.append((a, why))
        if refusals:
            denied = refuse(queue, tx, refusals, actor, "approve", at)
        else:
            for a in actions:
                if _approve_one(queue, tx, a, states[a.id], actor, comment, now, at):
                    to_run.append(a.id)
            if to_run and queue.config.by_worker:
                tx.notify_work()  # delivered when this decision commits
    if denied is not None:
        raise denied
    if to_run and not queue.config.by_worker:
        with queue.store.read() as tx:
            running = tx.get_actions(to_run)
        queue.execute([running[i] for i in to_run], actor=actor)
    with queue.store.read() as tx:
        final = tx.get_actions([a.id for a in actions])
    return [final[a.id] for a in actions]


def _approve_problem(queue: Runtime, a: ActionRecord, state: ActionLedger, actor: str,
                     comment: str | None) -> str | None:
    tampered = stored_problem(state, a)
    if tampered:
        return tampered
    why = role_problem(queue, actor, a.approval.get("roles", ()), f"approving {a.action_type}")
    if why:
        return why
    if a.source == "manual" and same_actor(a.submitted_by, actor):
        return f"{actor} submitted this manual action and cannot approve it"
    if a.approval.get("require_comment") and not (comment and comment.strip()):
        return "its policy requires a comment (--comment)"
    if any(same_actor(name, actor) for name, _ in state.approvers):
        return (f"{actor} already approved it; its quorum needs {state.quorum} distinct"
                " approvers")
    return None


def _approve_one(queue: Runtime, tx: Tx, a: ActionRecord, state: ActionLedger, actor: str,
                 comment: str | None, now: dt.datetime, at: str) -> bool:
    """Record one approval; True when it completes the quorum and the action must run
    (at once, or, with ``execution: worker``, when a worker claims it: left approved)."""
    tx.insert_approval(a.id, actor, comment, at)
    approvers = [*dict.fromkeys(name for name, _ in state.approvers), actor]
    quorum = state.quorum
    details: dict[str, Any] = {"approvals": len(approvers), "quorum": quorum}
    if len(approvers) < quorum:
        queue.change(tx, a, {"updated_at": at})
        tx.log(LedgerEvent("approved", actor, a.id, PENDING, PENDING, comment, details), at)
        return False
    window = int(a.approval.get("dedup_window", 3600))
    since = format_time(now - dt.timedelta(seconds=window))
    first = tx.recent_approval(a.entity_key, a.action_type, since, exclude=a.id)
    decided = {"approved_at": at, "decided_by": ",".join(approvers), "decided_at": at,
               "updated_at": at}
    tx.log(LedgerEvent("approved", actor, a.id, PENDING, APPROVED, comment, details), at)
    if first is not None:
        queue.change(tx, a, {**decided, "status": DEDUPLICATED, "link_id": first.id})
        tx.log(LedgerEvent("deduplicated", actor, a.id, APPROVED, DEDUPLICATED, None,
                           {"duplicate_of": first.id, "dedup_window": window}), at)
        return False
    if queue.config.by_worker:
        # The decision is recorded; a worker claims the approved action and runs it.
        queue.change(tx, a, {**decided, "status": APPROVED})
        return True
    start = queue.start_changes(a, "apply", at)
    queue.change(tx, a, {**decided, **start})
    tx.log(LedgerEvent("started", actor, a.id, APPROVED, RUNNING, None,
                       {"operation": "apply", "idempotency_key": start["run_key"]}), at)
    return True


def reject(queue: Runtime, ids: Iterable[int], *, actor: str, reason: str) -> list[ActionRecord]:
    actor = check_actor(actor)
    if not reason or not reason.strip():
        raise UsageError("rejecting needs a reason (--reason)")
    at = format_time(queue.now())
    denied: PermissionDenied | None = None
    with queue.store.write() as tx:
        actions = queue.load(tx, ids)
        same_type(actions, "reject")
        for a in actions:
            check_transition(a, REJECTED, "reject")
        refusals = [(a, why) for a in actions if (why := role_problem(
            queue, actor, a.approval.get("roles", ()), f"rejecting {a.action_type}"))]
        if refusals:
            denied = refuse(queue, tx, refusals, actor, "reject", at)
        else:
            for a in actions:
                queue.change(tx, a, {"status": REJECTED, "reason": reason, "decided_by": actor,
                                     "decided_at": at, "updated_at": at, "expires_at": None})
                tx.log(LedgerEvent("rejected", actor, a.id, PENDING, REJECTED, reason, {}), at)
            final = tx.get_actions([a.id for a in actions])
    if denied is not None:
        raise denied
    return [final[a.id] for a in actions]


def expire_due(queue: Runtime) -> list[int]:
    now = queue.now()
    at = format_time(now)
    with queue.store.read() as tx:
        if not tx.due("expires_at", PENDING, at, limit=1):
            return []  # the common case costs one indexed read, no write lock
    expired: list[int] = []
    while True:
        with queue.store.write() as tx:
            due = tx.due("expires_at", PENDING, at, limit=1000)
            for a in due:
                after = int(a.approval.get("expires_after", 0))
                reason = f"no decision within {_span(after)}: counts as rejected"
                queue.change(tx, a, {"status": EXPIRED, "reason": reason, "decided_by": SYSTEM,
                                     "decided_at": at, "updated_at": at})
                tx.log(LedgerEvent("expired", SYSTEM, a.id, PENDING, EXPIRED, reason,
                                   {"expires_at": a.expires_at}), at)
                expired.append(a.id)
        notify.send(queue.config.notifications, "expired", due, EXPIRED)  # after the commit
        if len(due) < 1000:
            return expired


def _span(seconds: int) -> str:
    from airgate.policy.durations import format_duration

    return format_duration(seconds) if seconds else "its expiry time"
