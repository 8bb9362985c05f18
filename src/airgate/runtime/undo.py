"""Undo, redo (change the action type) and timed reverts of completed actions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airgate.catalog import GLOBAL_ADMIN, ActionSpec, Catalog
from airgate.errors import PermissionDenied, TransitionError, UsageError
from airgate.model import Approval, Decision, Evidence
from airgate.runtime import notify
from airgate.runtime.clock import format_time, parse_stored_time, time_after
from airgate.runtime.guards import check_actor, refuse, role_problem, same_type
from airgate.runtime.ledger import evidence_digest
from airgate.runtime.records import (
    AUTOMATION,
    COMPLETED,
    EXPIRED,
    FAILED,
    PENDING,
    REJECTED,
    RUNNING,
    SUPERSEDED,
    UNDONE,
    ActionRecord,
    LedgerEvent,
)

if TYPE_CHECKING:
    from airgate.engine.core import Engine
    from airgate.runtime.context import Runtime
    from airgate.runtime.store import Tx

REDO_FROM = (COMPLETED, UNDONE, FAILED, REJECTED, EXPIRED)


def undo(queue: Runtime, ids: Iterable[int], *, actor: str, comment: str | None = None,
         all_instances: bool = False) -> list[ActionRecord]:
    """Undo completed, undoable actions through their executor (operation ``undo``).

    ``all_instances``: for an action whose undo covers every instance of a file
    (quarantine), also undo every other completed action of that type on the same hash.
    """
    actor = check_actor(actor)
    at = format_time(queue.now())
    denied: PermissionDenied | None = None
    with queue.store.write() as tx:
        actions = queue.load(tx, ids)
        same_type(actions, "undo")
        if all_instances:
            actions = _with_instances(tx, actions)
        for a in actions:
            _check_undoable(a)
        refusals = []
        for a in actions:
            why = role_problem(queue, actor, a.approval.get("roles", ()),
                               f"undoing {a.action_type}")
            needed = (a.undo or {}).get("requires_role")
            if why is None and needed:
                why = role_problem(queue, actor, (needed,), f"undoing {a.action_type}")
            if why:
                refusals.append((a, why))
        if refusals:
            denied = refuse(queue, tx, refusals, actor, "undo", at)
        elif queue.config.by_worker:
            _request_undo(tx, actions, actor, comment, at)
        else:
            start_undo(queue, tx, actions, actor, comment, at)
    if denied is not None:
        raise denied
    if queue.config.by_worker:
        with queue.store.read() as tx:
            found = tx.get_actions([a.id for a in actions])
        return [found[a.id] for a in actions]
    return _run(queue, [a.id for a in actions], actor, None)


def _request_undo(tx: Tx, actions: list[ActionRecord], actor: str, comment: str | None,
                  at: str) -> None:
    """``execution: worker``: the undo is a ledgered request a worker claims; the action
    stays completed until then (a worker checks the request in the ledger, not the row)."""
    for a in actions:
        tx.request_undo(a.id, actor, at)
        tx.log(LedgerEvent("requested", actor, a.id, COMPLETED, COMPLETED, comment,
                           {"operation": "undo"}), at)
    tx.notify_work()


def _with_instances(tx: Tx, actions: list[ActionRecord]) -> list[ActionRecord]:
    out = {a.id: a for a in actions}
    for a in actions:
        if a.entity_hash and (a.undo or {}).get("bulk_by_hash"):
            for other in tx.same_hash(a.entity_hash, COMPLETED):
                if other.action_type == a.action_type:
                    out.setdefault(other.id, other)
    return list(out.values())


def _check_undoable(a: ActionRecord) -> None:
    if not a.undoable:
        raise TransitionError(f"cannot undo action {a.id}: {a.action_type} has no undo")
    if a.status != COMPLETED:
        raise TransitionError(
            f"cannot undo action {a.id} ({a.action_type} on {a.entity_name}): it is {a.status}")


def start_undo(queue: Runtime, tx: Tx, actions: list[ActionRecord], actor: str,
               comment: str | None, at: str) -> None:
    """Mark completed actions running their undo, each under a new run key."""
    for a in actions:
        start = queue.start_changes(a, "undo", at)
        queue.change(tx, a, start)
        tx.log(LedgerEvent("started", actor, a.id, COMPLETED, RUNNING, comment,
                           {"operation": "undo", "idempotency_key": start["run_key"]}), at)


def _run(queue: Runtime, ids: list[int], actor: str, event: str | None) -> list[ActionRecord]:
    with queue.store.read() as tx:
        running = tx.get_actions(ids)
    return queue.execute([running[i] for i in ids], actor=actor, event_done=event)


def revert_due(queue: Runtime) -> list[int]:
    """Undo, as ``automation``, completed actions whose ``revert_after`` has passed (with
    ``execution: worker``, none: a worker claims each due revert)."""
    if queue.config.by_worker:
        return []
    at = format_time(queue.now())
    with queue.store.read() as tx:
        if not tx.due("revert_at", COMPLETED, at, limit=1):
            return []
    with queue.store.write() as tx:
        due = [a for a in tx.due("revert_at", COMPLETED, at, limit=1000) if a.undoable]
        start_undo(queue, tx, due, AUTOMATION, "revert_after elapsed", at)
    return [a.id for a in _run(queue, [a.id for a in due], AUTOMATION, "reverted")]


def redo(queue: Runtime, action_id: int, *, action_type: str, actor: str,
         comment: str | None = None, catalog: Catalog | None = None,
         engine: Engine | None = None) -> ActionRecord:
    """Change the action type: a new pending action linked to the old, which is superseded.

    The new action is a person's manual response: it waits for approval, and its author
    cannot approve it. Its approval is never weaker than the old action's, the new
    type's catalog default, or what the current policy (``engine``, evaluated on the
    action's stored evidence) gives the new type on that entity; a policy that excludes
    the new type on that entity refuses the change. The actor needs an approver role
    of the new action (or global-admin), as approving it would.
    """
    actor = check_actor(actor)
    catalog = catalog or queue.catalog
    spec = catalog.get(action_type)
    if spec is None:
        raise UsageError(f"unknown action type {action_type!r} (see airgate actions-catalog)")
    now = queue.now()
    at = format_time(now)
    denied: PermissionDenied | None = None
    with queue.store.write() as tx:
        old = queue.load(tx, [action_id])[0]
        if old.status not in REDO_FROM:
            raise TransitionError(
                f"cannot redo action {old.id}: it is {old.status}; redo changes an action that"
                f" is {', '.join(REDO_FROM)}")
        if action_type == old.action_type:
            raise UsageError(f"action {old.id} already is {action_type}: name another type")
        if spec.targets and old.entity_type not in spec.targets:
            raise UsageError(f"{action_type} does not apply to a {old.entity_type}"
                             f" (it targets {', '.join(sorted(spec.targets))})")
        evidence = tx.evidence_for(old.id)
        decided = _policy_decisions(engine, evidence, action_type, old.entity_key)
        excluded = sorted({r for d in decided for r in d.suppressed_by})
        approval = redo_approval(old.approval, spec, [d for d in decided if not d.suppressed_by])
        why = role_problem(queue, actor, approval["roles"], f"changing an action to {action_type}")
        if excluded:
            why = (f"the current policy excludes {action_type} on {old.entity_name}"
                   f" ({', '.join(excluded)})")
        if why:
            denied = refuse(queue, tx, [(old, why)], actor, "redo", at)
        else:
            created = _create_redo(queue, tx, old, spec, approval, evidence, actor, comment, at)
    if denied is not None:
        raise denied
    notify.send(queue.config.notifications, "pending", [created])  # after the commit
    return created


def _policy_decisions(engine: Engine | None, evidence: list[dict[str, Any]], action_type: str,
                      entity_key: str) -> list[Decision]:
    """What the current policy decides for ``action_type`` on the entity, from its evidence."""
    if engine is None:
        return []
    items = [Evidence(**{**e["data"], "fields": e["data"].get("fields") or {}})
             for e in evidence if isinstance(e["data"], Mapping) and "verdict" in e["data"]]
    return [d for d in engine.evaluate(items)
            if d.action == action_type and d.entity.key == entity_key]


def redo_approval(old: Mapping[str, Any], spec: ActionSpec,
                  decided: list[Decision]) -> dict[str, Any]:
    """The new action's approval: required, its roles the policy's for the new type (else
    the catalog's approver), and each other setting the strongest of the old action's,
    the catalog default's and the policy's (highest quorum and dedup window, shortest
    expiry, a comment if any asks)."""
    parts = [Approval(required=True, roles=(spec.approver_role,))]
    parts.append(Approval(
        required=True, roles=(spec.approver_role,), quorum=int(old.get("quorum", 1)),
        expires_after=int(old.get("expires_after", parts[0].expires_after)),
        require_comment=bool(old.get("require_comment", False)),
        dedup_window=int(old.get("dedup_window", parts[0].dedup_window))))
    parts += [d.approval for d in decided]
    roles: set[str] = set()
    for d in decided:  # several matching decisions: only roles all of them allow
        roles = set(d.approval.roles) if not roles else roles & set(d.approval.roles)
    if decided and not roles:
        roles = {GLOBAL_ADMIN}
    return {"required": True, "roles": sorted(roles or {spec.approver_role}),
            "quorum": max(p.quorum for p in parts),
            "expires_after": min(p.expires_after for p in parts),
            "require_comment": any(p.require_comment for p in parts),
            "dedup_window": max(p.dedup_window for p in parts)}


def _create_redo(queue: Runtime, tx: Tx, old: ActionRecord, spec: ActionSpec,
                 approval: dict[str, Any], evidence: list[dict[str, Any]], actor: str,
                 comment: str | None, at: str) -> ActionRecord:
    new_id = tx.next_action_id()
    undo_spec = None if spec.undo is None else {
        "action": spec.undo.action, "display_name": spec.undo.display_name,
        "bulk_by_hash": spec.undo.bulk_by_hash, "requires_role": spec.undo.requires_role}
    row = {
        **{k: getattr(old, k) for k in ("investigation", "entity_type", "entity_key",
                                        "entity_name", "entity_hash", "rules")},
        "id": new_id, "action_type": spec.id, "status": PENDING, "version": 1,
        "source": "manual", "approval": approval,
        "reasons": [f"changed from {old.action_type} (action {old.id}) by {actor}"],
        "undo": undo_spec, "revert_after": None, "max_automatic_per_hour": None,
        "created_at": at, "updated_at": at, "submitted_by": actor,
        "expires_at": time_after(parse_stored_time(at), int(approval["expires_after"])),
        "link_id": old.id,
    }
    tx.insert_actions([row])
    tx.insert_evidence([
        {"action_id": new_id, "investigation": e["investigation"], "added_at": at,
         "submitted_by": actor, "data": e["data"]} for e in evidence])
    queue.change(tx, old, {"status": SUPERSEDED, "superseded_by": new_id, "updated_at": at})
    tx.log(LedgerEvent("superseded", actor, old.id, old.status, SUPERSEDED, comment,
                       {"superseded_by": new_id, "action_type": spec.id}), at)
    # Bound as submit binds its actions: ledger verify and approve trust these over the tables.
    tx.log(LedgerEvent("created", actor, new_id, None, PENDING, comment,
                       {"redo_of": old.id, "rules": list(old.rules), "approval": approval,
                        "investigation": old.investigation, "action_type": spec.id,
                        "entity_key": old.entity_key, "expires_at": row["expires_at"],
                        "evidence": [evidence_digest(e["data"]) for e in evidence]}), at)
    created = tx.get_action(new_id)
    assert created is not None
    return created


__all__ = ["undo", "redo", "revert_due", "start_undo", "GLOBAL_ADMIN"]
