"""The approval queue: decisions become actions that wait, run, settle and can be undone.

``Queue`` owns the state machine (records.TRANSITIONS). Each state change and
its ledger entry are written in one store transaction; executors run outside
any transaction (a slow program must not hold the write lock) between a
``started`` entry and a ``completed``/``failed`` one. Approvals and rejections
live in ``approvals.py``, undo, redo and timed reverts in ``undo.py``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .catalog import DEFAULT_CATALOG, Catalog
from .clock import Clock, SystemClock, format_time
from .config import Config
from .errors import NotFound, TransitionError
from .executor import ExecRequest, ExecResult, Executor, make_executor
from .model import Decision
from .records import (
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    SYSTEM,
    TRANSITIONS,
    UNDONE,
    ActionFilter,
    ActionRecord,
    LedgerEntry,
    LedgerEvent,
)

if TYPE_CHECKING:
    from .store import Store, Tx

RECONCILE_GRACE = 60  # seconds past the executor's time-out before a run counts as dead


@dataclass(frozen=True)
class SubmitOutcome:
    """What submit did with one decision: created, merged or excluded."""

    outcome: str
    decision: Decision
    action_id: int | None = None
    action: ActionRecord | None = None


@dataclass(frozen=True)
class TickReport:
    expired: list[int] = field(default_factory=list)
    reverted: list[int] = field(default_factory=list)
    reconciled: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[int]]:
        return {"expired": self.expired, "reverted": self.reverted,
                "reconciled": self.reconciled}


def check_transition(action: ActionRecord, target: str, verb: str) -> None:
    """Raise TransitionError unless ``action`` may move to ``target``."""
    if target not in TRANSITIONS.get(action.status, frozenset()):
        raise TransitionError(
            f"cannot {verb} action {action.id} ({action.action_type} on {action.entity_name}):"
            f" it is {action.status}"
        )


def _iso(seconds_from: dt.datetime, seconds: int) -> str:
    return format_time(seconds_from + dt.timedelta(seconds=seconds))


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _entity_hash(fields: Mapping[str, Any]) -> str | None:
    # Quarantine undo may cover every file with the same hash (DOMAIN.md).
    for holder in (fields.get("fileDetails"), fields.get("imageFile"), fields):
        if isinstance(holder, Mapping):
            for name in ("sha256", "sha1", "md5"):
                value = holder.get(name)
                if isinstance(value, str) and value:
                    return value.lower()
    return None


class Queue:
    """The approval queue over a store. ``executors`` overrides the configured ones (tests)."""

    def __init__(
        self,
        store: Store,
        *,
        config: Config | None = None,
        clock: Clock | None = None,
        catalog: Catalog = DEFAULT_CATALOG,
        executors: Mapping[str, Executor] | None = None,
    ) -> None:
        self.store = store
        self.config = config or Config()
        self.clock: Clock = clock or SystemClock()
        self.catalog = catalog
        self._executors = dict(executors or {})

    # ------------------------------------------------------------ helpers
    def now(self) -> dt.datetime:
        return self.clock.now()

    def executor_for(self, action_type: str) -> Executor:
        found = self._executors.get(action_type) or self._executors.get("default")
        if found is not None:
            return found
        return make_executor(self.config.executor_for(action_type), self.store, self.clock)

    def _timeout_of(self, action_type: str) -> float:
        found = self._executors.get(action_type) or self._executors.get("default")
        timeout = getattr(found, "timeout", None)
        if isinstance(timeout, int | float):
            return float(timeout)
        return float(self.config.executor_for(action_type).timeout)

    @staticmethod
    def change(tx: Tx, action: ActionRecord, changes: Mapping[str, Any]) -> None:
        """Write ``changes`` if nobody changed the action since it was read."""
        if not tx.update_action(action.id, action.version, changes):
            raise TransitionError(f"action {action.id} changed while this command ran: try again")

    @staticmethod
    def start_changes(action: ActionRecord, operation: str, at: str) -> dict[str, Any]:
        # A key per run: a retried undo after a failed one is a new run, a reconciled run is not.
        key = f"airgate:{action.id}:{operation}:{action.version + 1}"
        return {"status": RUNNING, "operation": operation, "run_key": key, "started_at": at,
                "updated_at": at}

    def load(self, tx: Tx, ids: Iterable[int]) -> list[ActionRecord]:
        ids = list(dict.fromkeys(ids))
        found = tx.get_actions(ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(f"no action {', '.join(map(str, missing))}")
        return [found[i] for i in ids]

    # ------------------------------------------------------------ submit
    def submit(
        self, decisions: Iterable[Decision], *, actor: str, catalog: Catalog | None = None
    ) -> list[SubmitOutcome]:
        """Enqueue decisions: excluded ones are skipped, a decision on an entity and action
        already pending is merged into it, automatic ones are approved by ``automation``
        and carried out at once."""
        from .submit import enqueue

        return enqueue(self, list(decisions), actor=actor, catalog=catalog or self.catalog)

    def approve(self, ids: Iterable[int], *, actor: str,
                comment: str | None = None) -> list[ActionRecord]:
        """Approve pending actions (one action type); the quorum's last approval runs them."""
        from .approvals import approve

        return approve(self, ids, actor=actor, comment=comment)

    def reject(self, ids: Iterable[int], *, actor: str, reason: str) -> list[ActionRecord]:
        """Reject pending actions (one action type) with a reason."""
        from .approvals import reject

        return reject(self, ids, actor=actor, reason=reason)

    def undo(self, ids: Iterable[int], *, actor: str, comment: str | None = None,
             all_instances: bool = False) -> list[ActionRecord]:
        """Undo completed, undoable actions (one action type) through their executor."""
        from .undo import undo

        return undo(self, ids, actor=actor, comment=comment, all_instances=all_instances)

    def redo(self, action_id: int, *, action_type: str, actor: str,
             comment: str | None = None, catalog: Catalog | None = None) -> ActionRecord:
        """Change an action's type: a new pending action; the old one is superseded."""
        from .undo import redo

        return redo(self, action_id, action_type=action_type, actor=actor, comment=comment,
                    catalog=catalog)

    # ------------------------------------------------------------ running
    def execute(self, actions: Iterable[ActionRecord], *, actor: str, reconcile: bool = False,
                event_done: str | None = None) -> list[ActionRecord]:
        """Run the executor for actions already marked running; record how it ended."""
        done: list[ActionRecord] = []
        for action in actions:
            request = ExecRequest(
                operation=action.operation or "apply",
                action={"id": action.id, "action_type": action.action_type,
                        "investigation": action.investigation, "rules": list(action.rules),
                        "source": action.source,
                        "undo_action": (action.undo or {}).get("action")},
                entity={"type": action.entity_type, "key": action.entity_key,
                        "name": action.entity_name, "hash": action.entity_hash},
                idempotency_key=action.run_key or "",
                reconcile=reconcile,
            )
            executor = self.executor_for(action.action_type)
            try:
                result = executor.run(request)
            except Exception as exc:  # an executor bug must not leave the action running
                result = ExecResult(False, None, f"executor error: {exc}", executor.name)
            done.append(self._finish(action, result, actor=actor, reconcile=reconcile,
                                     event_done=event_done))
        return done

    def _finish(self, action: ActionRecord, result: ExecResult, *, actor: str, reconcile: bool,
                event_done: str | None) -> ActionRecord:
        now = self.now()
        at = format_time(now)
        undo = action.operation == "undo"
        details: dict[str, Any] = {"operation": action.operation, "result": result.as_dict(),
                                   "idempotency_key": action.run_key}
        if reconcile:
            details["reconciled"] = True
        if result.ok:
            target, event = (UNDONE, event_done or "undone") if undo else (COMPLETED, "completed")
            changes: dict[str, Any] = {"status": target, "result": result.output, "error": None}
            if not undo and action.revert_after and action.undoable:
                changes["revert_at"] = _iso(now, action.revert_after)
            if undo:
                changes["revert_at"] = None
        else:
            # A failed undo leaves the effect in place: the action stays completed.
            target, event = (COMPLETED, "failed") if undo else (FAILED, "failed")
            changes = {"status": target, "error": result.message}
        changes["updated_at"] = at
        with self.store.write() as tx:
            current = tx.get_action(action.id)
            if current is None or current.status != RUNNING or current.run_key != action.run_key:
                return current or action  # someone else (a reconciling tick) finished it
            self.change(tx, current, changes)
            tx.log(LedgerEvent(event, actor, action.id, RUNNING, target,
                               None if result.ok else result.message, details), at)
            final = tx.get_action(action.id)
        assert final is not None
        return final

    # ------------------------------------------------------------ time-driven work
    def expire(self) -> list[int]:
        """Pending actions past their expiry become expired (which counts as rejected)."""
        from .approvals import expire_due

        return expire_due(self)

    def maintain(self) -> TickReport:
        """Expiries and due reverts: run lazily before any command reads the queue."""
        from .undo import revert_due

        return TickReport(expired=self.expire(), reverted=revert_due(self))

    def tick(self) -> TickReport:
        """Expiries, due reverts, and reconciliation of runs whose process died."""
        report = self.maintain()
        return TickReport(report.expired, report.reverted, self.reconcile())

    def reconcile(self) -> list[int]:
        """Finish actions left running by a process that died, through the same idempotency
        key: the record executor returns its earlier record; a command is asked again with
        ``reconcile: true`` and must not act twice."""
        now = self.now()
        cutoff = format_time(now - dt.timedelta(seconds=RECONCILE_GRACE))
        with self.store.read() as tx:
            running = tx.due("started_at", RUNNING, cutoff, limit=10_000)
        stale = [a for a in running if a.started_at is not None and a.started_at <= format_time(
            now - dt.timedelta(seconds=RECONCILE_GRACE + self._timeout_of(a.action_type)))]
        return [self.execute([a], actor=SYSTEM, reconcile=True)[0].id for a in stale]

    # ------------------------------------------------------------ reading
    def list_actions(self, flt: ActionFilter) -> list[ActionRecord]:
        with self.store.read() as tx:
            return tx.list_actions(flt)

    def get(self, action_id: int) -> ActionRecord:
        with self.store.read() as tx:
            return self.load(tx, [action_id])[0]

    def show(self, action_id: int) -> dict[str, Any]:
        """The whole story of one action: record, evidence, approvals, ledger entries."""
        with self.store.read() as tx:
            action = self.load(tx, [action_id])[0]
            return {
                "action": action.as_dict(),
                "evidence": tx.evidence_for(action_id),
                "approvals": tx.approvals_for(action_id),
                "ledger": [e.as_dict() for e in tx.ledger_for(action_id)],
            }

    def ledger_entries(self, action_id: int) -> list[LedgerEntry]:
        with self.store.read() as tx:
            return tx.ledger_for(action_id)

    def investigations(self) -> list[dict[str, Any]]:
        from .investigations import derive

        with self.store.read() as tx:
            counts = tx.investigation_counts()
        return [{"investigation": inv, "status": derive(c), "actions": sum(c.values()),
                 "counts": c} for inv, c in sorted(counts.items())]


def pending_expiry(decision: Decision, now: dt.datetime) -> str:
    return _iso(now, decision.approval.expires_after)


__all__ = ["Queue", "SubmitOutcome", "TickReport", "check_transition", "PENDING"]
