"""The approval queue: decisions become actions that wait, run, settle and can be undone.

``Queue`` is the facade the CLI, the server and scripts use. It is a
:class:`~airgate.runtime.context.Runtime` offering the operations as methods;
the operations themselves live below it: submit in ``submit.py``, approvals,
rejections and expiry in ``approvals.py``, undo, redo and timed reverts in
``undo.py``. The state machine is ``records.TRANSITIONS``; each state change and
its ledger entry are written in one store transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airgate.catalog import Catalog
from airgate.model import Decision
from airgate.runtime import approvals, submit, undo
from airgate.runtime.clock import format_time
from airgate.runtime.context import RECONCILE_GRACE, Runtime
from airgate.runtime.investigations import derive
from airgate.runtime.records import (
    PENDING,
    RUNNING,
    SYSTEM,
    ActionFilter,
    ActionRecord,
    LedgerEntry,
    check_transition,
)
from airgate.runtime.submit import SubmitIncomplete, SubmitOutcome

if TYPE_CHECKING:
    from airgate.engine.core import Engine



@dataclass(frozen=True)
class TickReport:
    expired: list[int] = field(default_factory=list)
    reverted: list[int] = field(default_factory=list)
    reconciled: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[int]]:
        return {"expired": self.expired, "reverted": self.reverted,
                "reconciled": self.reconciled}


class Queue(Runtime):
    """The approval queue over a store. ``executors`` overrides the configured ones (tests)."""

    # ------------------------------------------------------------ submit
    def submit(
        self, decisions: Iterable[Decision], *, actor: str, catalog: Catalog | None = None,
        investigations: Iterable[str] = (), stored: Callable[[], object] | None = None,
    ) -> list[SubmitOutcome]:
        """Enqueue decisions: excluded ones are skipped, one whose investigation already gave
        that entity that action changes nothing (``unchanged``), one on an entity and action
        already pending is merged into it, automatic ones are approved by ``automation``
        and carried out at once.

        ``investigations``: every investigation the evidence held; those without a decision
        are recorded too (their status is *no threats found*). A batch that fails after
        others were committed raises ``SubmitIncomplete``, saying what was stored.
        ``stored`` is called once the writing is over, before automatic actions run (the
        server lets the next request in there, rather than after the executors answer)."""
        return submit.enqueue(self, list(decisions), actor=actor, catalog=catalog or self.catalog,
                              investigations=investigations, stored=stored)

    def approve(self, ids: Iterable[int], *, actor: str,
                comment: str | None = None) -> list[ActionRecord]:
        """Approve pending actions (one action type); the quorum's last approval runs them."""
        return approvals.approve(self, ids, actor=actor, comment=comment)

    def reject(self, ids: Iterable[int], *, actor: str, reason: str) -> list[ActionRecord]:
        """Reject pending actions (one action type) with a reason."""
        return approvals.reject(self, ids, actor=actor, reason=reason)

    def undo(self, ids: Iterable[int], *, actor: str, comment: str | None = None,
             all_instances: bool = False) -> list[ActionRecord]:
        """Undo completed, undoable actions (one action type) through their executor."""
        return undo.undo(self, ids, actor=actor, comment=comment, all_instances=all_instances)

    def redo(self, action_id: int, *, action_type: str, actor: str,
             comment: str | None = None, catalog: Catalog | None = None,
             engine: Engine | None = None) -> ActionRecord:
        """Change an action's type: a new pending action; the old one is superseded. Its
        approval is never weaker than what ``engine`` (the current policy) gives the new
        type on that entity, the old action's or the catalog default's."""
        return undo.redo(self, action_id, action_type=action_type, actor=actor, comment=comment,
                         catalog=catalog, engine=engine)

    # ------------------------------------------------------------ time-driven work
    def expire(self) -> list[int]:
        """Pending actions past their expiry become expired (which counts as rejected)."""
        return approvals.expire_due(self)

    def maintain(self) -> TickReport:
        """Expiries and due reverts: run lazily before any command reads the queue."""
        return TickReport(expired=self.expire(), reverted=undo.revert_due(self))

    def tick(self) -> TickReport:
        """Expiries, due reverts, and reconciliation of runs whose process died."""
        report = self.maintain()
        return TickReport(report.expired, report.reverted, self.reconcile())

    def reconcile(self) -> list[int]:
        """Finish actions left running by a process that died, through the same idempotency
        key: the record executor returns its earlier record; a command is asked again with
        ``reconcile: true`` and must not act twice. With ``execution: worker`` the workers
        reconcile (under their leases), and this does nothing; a run a worker holds a live
        lease on is never touched."""
        if self.config.by_worker:
            return []
        now = self.now()
        cutoff = format_time(now - dt.timedelta(seconds=RECONCILE_GRACE))
        with self.store.read() as tx:
            running = tx.due("started_at", RUNNING, cutoff, limit=10_000)
            held = tx.live_leases([a.id for a in running], format_time(now))
        stale = [a for a in running if a.started_at is not None and a.id not in held and (
            a.started_at <= format_time(now - self.reconcile_wait(a.action_type)))]
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

    def get_many(self, ids: Iterable[int]) -> list[ActionRecord]:
        """Several actions in the order asked; NotFound names every missing id."""
        with self.store.read() as tx:
            return self.load(tx, ids)

    def approvers(self, ids: Iterable[int]) -> dict[int, list[str]]:
        """Who has approved each action so far (a quorum's approvals so far), in order."""
        with self.store.read() as tx:
            return tx.approvers_of(ids)

    def undone_by(self, ids: Iterable[int]) -> dict[int, tuple[str, str]]:
        """Per undone action: who undid it and how (``undone``, or ``reverted`` by a timed
        revert). ``decided_by`` stays the approver; the ledger knows the undoer."""
        with self.store.read() as tx:
            return tx.undone_by(ids)

    def ledger_entries(self, action_id: int) -> list[LedgerEntry]:
        with self.store.read() as tx:
            return tx.ledger_for(action_id)

    def pending_counts(self, cap: int | None = None) -> dict[str, int]:
        """Pending actions per action type (the Action center's live counts). With ``cap``,
        a count past it is ``cap + 1`` (more than ``cap``), read in time bounded by ``cap``
        rather than by the size of the queue."""
        with self.store.read() as tx:
            return tx.count_by_type(PENDING) if cap is None else tx.count_by_type_upto(
                PENDING, cap)

    def investigations(self) -> list[dict[str, Any]]:
        with self.store.read() as tx:
            counts = tx.investigation_counts()
        return [{"investigation": inv, "status": derive(c), "actions": sum(c.values()),
                 "counts": c} for inv, c in sorted(counts.items())]


__all__ = ["Queue", "SubmitIncomplete", "SubmitOutcome", "TickReport", "check_transition",
           "PENDING"]
