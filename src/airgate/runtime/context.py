"""What every queue operation works with: the store, config, clock, catalog and
executors, plus carrying out an action already marked running.

The operations (``submit``, ``approvals``, ``undo``) take a :class:`Runtime`;
the :class:`~airgate.runtime.queue.Queue` facade is a Runtime that offers them
as methods. Executors run outside any transaction (a slow program must not hold
the write lock) between a ``started`` entry and a ``completed``/``failed`` one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airgate.catalog import DEFAULT_CATALOG, Catalog
from airgate.errors import NotFound, StoreError, TransitionError
from airgate.runtime import notify
from airgate.runtime.clock import Clock, SystemClock, format_time, time_after
from airgate.runtime.config import Config
from airgate.runtime.executors import ExecRequest, ExecResult, Executor, make_executor
from airgate.runtime.executors.base import PlannedRequest
from airgate.runtime.executors.output import storable_output, storable_text
from airgate.runtime.executors.targets import target_from_evidence
from airgate.runtime.ledger import ActionLedger, fold, stored_problem
from airgate.runtime.records import (
    COMPLETED,
    FAILED,
    RUNNING,
    UNDONE,
    ActionRecord,
    LedgerEvent,
)

if TYPE_CHECKING:
    from airgate.runtime.store import Store, Tx


RECONCILE_GRACE = 60  # seconds past the executor's time-out before a run counts as dead


class Runtime:
    """The store, config, clock, catalog and executors one queue works with, and how a
    running action is carried out. ``executors`` overrides the configured ones (tests)."""

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

    def timeout_of(self, action_type: str) -> float:
        found = self._executors.get(action_type) or self._executors.get("default")
        timeout = getattr(found, "timeout", None)
        if isinstance(timeout, int | float):
            return float(timeout)
        return float(self.config.executor_for(action_type).timeout)

    def reconcile_wait(self, action_type: str) -> dt.timedelta:
        """How long after it started a run with no live lease counts as dead (or an
        unknown outcome is asked again): the executor's time-out and a grace period."""
        return dt.timedelta(seconds=RECONCILE_GRACE + self.timeout_of(action_type))

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

    # ------------------------------------------------------------ running
    def execute(self, actions: Iterable[ActionRecord], *, actor: str, reconcile: bool = False,
                event_done: str | None = None) -> list[ActionRecord]:
        """Run the executor for actions already marked running; record how it ended.

        Whatever an executor answers or raises, its outcome is recorded. Only the store
        failing to record it leaves an action running: then :class:`OutcomeNotRecorded`
        says so, and ``tick`` finishes the run later under the same idempotency key.
        An executor whose request got no answer (``ExecResult.unknown``) leaves it
        running too: an ``outcome_unknown`` entry says so, and ``tick`` reconciles it.
        An action whose stored state the ledger does not vouch for (started with this run
        key and, to apply, approved by the ledgered quorum) is not run: a ``refused`` entry
        says why and the action is left as it is."""
        todo = list(actions)
        with self.store.read() as tx:
            states = {a.id: fold(a.id, tx.ledger_for(a.id)) for a in todo}
            targets = {a.id: target_from_evidence(tx.evidence_for(a.id)) for a in todo}
        done: list[ActionRecord] = []
        for index, action in enumerate(todo):
            why = _run_problem(states[action.id], action)
            if why is not None:
                done.append(self._refuse_run(action, why, actor))
                continue
            name = "executor"
            try:
                executor = self.executor_for(action.action_type)
                name = executor.name
                result = executor.run(self._request(action, reconcile, targets[action.id]))
            except Exception as exc:  # an executor bug must not leave the action running
                result = ExecResult(False, None, f"executor error: {exc}", name)
            try:
                if result.unknown:
                    done.append(self._leave_running(action, result, actor=actor,
                                                    reconcile=reconcile))
                    continue
                done.append(self._finish(action, result, actor=actor, reconcile=reconcile,
                                         event_done=event_done))
            except OutcomeNotRecorded as exc:
                left = [a.id for a in todo[index + 1:]]
                if not left:
                    raise
                # Acting on more while the store cannot record it would only widen the gap.
                raise OutcomeNotRecorded(
                    f"{exc.message}; not run yet, left running for `airgate tick`: action"
                    f" {', '.join(map(str, left))}") from exc.__cause__
        return done

    def plan(self, actions: Iterable[ActionRecord]) -> list[list[PlannedRequest] | str]:
        """What running each action now would send (``approve --dry-run``), under the key
        its run would get: the HTTP requests, secrets masked, or one line for an executor
        that sends none. Sends nothing, records nothing."""
        todo = list(actions)
        with self.store.read() as tx:
            targets = {a.id: target_from_evidence(tx.evidence_for(a.id)) for a in todo}
        out: list[list[PlannedRequest] | str] = []
        for action in todo:
            # With execution: worker the approval and the worker's claim are two changes.
            ahead = dataclasses.replace(action, version=action.version + 1) if (
                self.config.by_worker and action.status == "pending") else action
            start = self.start_changes(ahead, "apply", "")
            running = dataclasses.replace(action, run_key=start["run_key"], operation="apply")
            executor = self.executor_for(action.action_type)
            planner = getattr(executor, "plan", None)
            request = self._request(running, False, targets[action.id])
            out.append(planner(request) if callable(planner) else
                       f"{executor.name}: cannot show its requests without running")
        return out

    @staticmethod
    def _request(action: ActionRecord, reconcile: bool,
                 target: Mapping[str, str] | None = None) -> ExecRequest:
        return ExecRequest(
            operation=action.operation or "apply",
            action={"id": action.id, "action_type": action.action_type,
                    "investigation": action.investigation, "rules": list(action.rules),
                    "source": action.source,
                    "undo_action": (action.undo or {}).get("action")},
            entity={"type": action.entity_type, "key": action.entity_key,
                    "name": action.entity_name, "hash": action.entity_hash},
            idempotency_key=action.run_key or "",
            reconcile=reconcile,
            target=dict(target or {}),
        )

    def _refuse_run(self, action: ActionRecord, why: str, actor: str) -> ActionRecord:
        at = format_time(self.now())
        with self.store.write() as tx:
            tx.log(LedgerEvent("refused", actor, action.id, action.status, action.status,
                               f"not run: {why}", {"attempt": "execute"}), at)
        return action

    def _finish(self, action: ActionRecord, result: ExecResult, *, actor: str, reconcile: bool,
                event_done: str | None) -> ActionRecord:
        # The effect has happened (or not) by now: nothing the executor answered may keep
        # the outcome from being recorded, so its report is made storable first.
        result = ExecResult(bool(result.ok), storable_output(result.output),
                            storable_text(result.message), storable_text(result.executor),
                            result.details)
        try:
            return self._record(action, result, actor=actor, reconcile=reconcile,
                                event_done=event_done)
        except Exception as exc:  # the store refused the write (its content, or a lock)
            failure: Exception = exc
        # Once more without the executor's output, in case that was what the store refused.
        bare = ExecResult(result.ok, None, result.message[:1000], result.executor)
        try:
            return self._record(action, bare, actor=actor, reconcile=reconcile,
                                event_done=event_done,
                                note=f"output not recorded: {storable_text(failure)}")
        except Exception as exc:
            failure = exc
        outcome = "done" if result.ok else "failed"
        raise OutcomeNotRecorded(
            f"action {action.id}: the executor ran ({outcome}) but its outcome could not be"
            f" recorded: {storable_text(failure)}. It stays running under idempotency key"
            f" {action.run_key}; `airgate tick` finishes it with that key") from failure

    def _leave_running(self, action: ActionRecord, result: ExecResult, *, actor: str,
                       reconcile: bool) -> ActionRecord:
        """The request may have been carried out: recording a failure could contradict the
        service, so the action stays running under its key and the ledger says why."""
        message = storable_text(result.message)
        details: dict[str, Any] = {
            "operation": action.operation, "idempotency_key": action.run_key,
            "result": {"ok": False, "outcome": "unknown",
                       "executor": storable_text(result.executor),
                       "output": storable_output(result.output), "message": message}}
        if reconcile:
            details["reconciled"] = True
        try:
            with self.store.write() as tx:
                current = tx.get_action(action.id)
                if current is None or current.status != RUNNING or (
                        current.run_key != action.run_key):
                    return current or action  # someone else (a reconciling tick) finished it
                tx.log(LedgerEvent("outcome_unknown", actor, action.id, RUNNING, RUNNING,
                                   f"outcome unknown, left running for `airgate tick`:"
                                   f" {message}", details), at=format_time(self.now()))
        except Exception as exc:
            raise OutcomeNotRecorded(
                f"action {action.id}: the executor got no answer and that could not be"
                f" recorded: {storable_text(exc)}. It stays running under idempotency key"
                f" {action.run_key}; `airgate tick` finishes it with that key") from exc
        return current

    def _record(self, action: ActionRecord, result: ExecResult, *, actor: str, reconcile: bool,
                event_done: str | None, note: str | None = None) -> ActionRecord:
        now = self.now()
        at = format_time(now)
        undo = action.operation == "undo"
        details: dict[str, Any] = {"operation": action.operation, "result": result.as_dict(),
                                   "idempotency_key": action.run_key}
        if reconcile:
            details["reconciled"] = True
        if note:
            details["note"] = note
        if result.ok:
            target, event = (UNDONE, event_done or "undone") if undo else (COMPLETED, "completed")
            changes: dict[str, Any] = {"status": target, "result": result.output, "error": None}
            if not undo and action.revert_after and action.undoable:
                changes["revert_at"] = time_after(now, action.revert_after)
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
        if not result.ok:  # committed: now the webhook may hear of it
            notify.send(self.config.notifications, "failed", [final])
        return final


class OutcomeNotRecorded(StoreError):
    """An executor ran but the store could not record how it ended: the action stays
    running under its idempotency key until ``tick`` reconciles it."""


def _run_problem(state: ActionLedger, action: ActionRecord) -> str | None:
    why = stored_problem(state, action)
    if why is None and (action.operation or "apply") == "apply" and not state.approved():
        approvers = len({name for name, _ in state.approvers})
        why = (f"the ledger holds {approvers} of the {state.quorum} approvals its ledgered"
               " quorum needs")
    return why
