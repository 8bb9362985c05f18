"""Submit: decisions into the queue, in batches (one transaction, a few bulk inserts).

Submitting is idempotent per (investigation, entity key, action type): a
decision whose investigation already gave that entity that action (in any
status) changes nothing. A decision on an entity and action type already
pending is merged into that action (its evidence attached). Automatic decisions are approved by
``automation`` in the same transaction and carried out after it commits,
unless the rule's ``max_automatic_per_hour`` is used up (they then wait for
approval, saying why) or the same entity and action were approved within the
dedup window (they are recorded as deduplicated, linked to the first).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airgate.catalog import Catalog
from airgate.errors import AirgateError, StoreError
from airgate.gcpause import gc_paused
from airgate.model import Decision
from airgate.runtime import notify
from airgate.runtime.clock import format_time, time_after
from airgate.runtime.guards import check_actor
from airgate.runtime.ledger import evidence_spelled
from airgate.runtime.records import (
    AUTOMATION,
    DEDUPLICATED,
    PENDING,
    RUNNING,
    ActionRecord,
    LedgerEvent,
)

if TYPE_CHECKING:
    from airgate.runtime.context import Runtime

BATCH = 5000


@dataclass(frozen=True)
class SubmitOutcome:
    """What submit did with one decision: created, merged, excluded, or unchanged (its
    investigation already gave this entity this action: ``action`` is that action)."""

    outcome: str
    decision: Decision
    action_id: int | None = None
    action: ActionRecord | None = None


class SubmitIncomplete(StoreError):
    """A batch failed after earlier batches were committed: ``outcomes`` says what was
    stored; the message says where submit stopped. Submitting again is safe (idempotent)."""

    def __init__(self, message: str, outcomes: list[SubmitOutcome]) -> None:
        super().__init__(message)
        self.outcomes = outcomes


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON types (what the store keeps)."""
    return json.loads(json.dumps(value, default=str))


_INF = (float("inf"), float("-inf"))


def is_plain_json(value: Any) -> bool:
    """Whether ``value`` holds only what JSON reads back as itself: dicts with string
    keys, lists, strings, integers, booleans, None and finite floats (tuples count as
    lists, which is how they are spelled). Such a value is its own ``json_safe`` copy
    and is spelled the same; anything else (a YAML date, an integer key, a subclass)
    is not, and is copied. A walk is about six times cheaper than that copy, and
    evidence read from JSON is always plain."""
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        kind = type(node)
        if kind is dict:
            for key, item in node.items():
                if type(key) is not str:
                    return False
                push(item)
        elif kind is list or kind is tuple:
            stack.extend(node)
        elif kind is float:
            if node != node or node in _INF:
                return False
        elif not (kind is str or kind is int or kind is bool or node is None):
            return False
    return True


def entity_hash(fields: Mapping[str, Any]) -> str | None:
    """The file hash of an entity: quarantine undo may cover every file with it (DOMAIN.md)."""
    for holder in (fields.get("fileDetails"), fields.get("imageFile"), fields):
        if isinstance(holder, Mapping):
            for name in ("sha256", "sha1", "md5"):
                value = holder.get(name)
                if isinstance(value, str) and value:
                    return value.lower()
    return None


def evidence_data(decision: Decision) -> dict[str, Any]:
    ev = decision.evidence
    if ev is None:
        return {"investigation": decision.investigation, "entity_type": decision.entity.type,
                "key": decision.entity.key, "name": decision.entity.name}
    data = {f.name: getattr(ev, f.name) for f in dataclasses.fields(ev) if f.name != "location"}
    data["fields"] = dict(ev.fields)
    # Only spelled and read from here on: a plain document needs no copy.
    return data if is_plain_json(data) else dict(json_safe(data))


class _Spelled:
    """Each evidence document of a batch made JSON-safe, spelled and hashed once.

    The decisions on one piece of evidence (several actions on one entity) share its
    ``Evidence`` object, so the work is keyed by that object's id; the object is kept
    with its result, alive, so that no other can take its id within the batch.
    """

    def __init__(self) -> None:
        self._done: dict[int, tuple[object, dict[str, Any], str, str]] = {}

    def __call__(self, d: Decision) -> tuple[dict[str, Any], str, str]:
        ev = d.evidence
        if ev is not None and id(ev) in self._done:
            _, data, text, digest = self._done[id(ev)]
            return data, text, digest
        data = evidence_data(d)
        text, digest = evidence_spelled(data)
        if ev is not None:
            self._done[id(ev)] = (ev, data, text, digest)
        return data, text, digest


def approval_dict(decision: Decision) -> dict[str, Any]:
    a = decision.approval
    return {"required": a.required, "roles": list(a.roles), "quorum": a.quorum,
            "expires_after": a.expires_after, "require_comment": a.require_comment,
            "dedup_window": a.dedup_window}


def enqueue(
    queue: Runtime, decisions: list[Decision], *, actor: str, catalog: Catalog,
    investigations: Iterable[str] = (), stored: Callable[[], object] | None = None,
) -> list[SubmitOutcome]:
    actor = check_actor(actor)  # "automation" and "system" are airgate's own, not a submitter's
    outcomes: list[SubmitOutcome] = []
    to_run: list[ActionRecord] = []
    for start in range(0, len(decisions), BATCH):
        batch = decisions[start:start + BATCH]
        try:
            done, started = _enqueue_batch(queue, batch, actor=actor, catalog=catalog)
        except Exception as exc:
            # Earlier batches are committed: their automatic actions still run (else they
            # would wait as running for reconciliation), and the error says what was stored.
            if stored is not None:
                stored()
            done = _ran(queue, outcomes, to_run)
            raise SubmitIncomplete(_stopped(decisions, start, done, exc), done) from exc
        outcomes.extend(done)
        to_run.extend(started)
        notify.send(queue.config.notifications, "pending", [  # the batch is committed
            o.action for o in done if o.outcome == "created" and o.action and o.action.status
            == PENDING])
    _note_quiet(queue, decisions, investigations)
    if stored is not None:
        stored()
    return _ran(queue, outcomes, to_run)


def _ran(queue: Runtime, outcomes: list[SubmitOutcome],
         to_run: list[ActionRecord]) -> list[SubmitOutcome]:
    if not to_run:
        # The records were built from the rows as written: no second read of the batch.
        return outcomes
    ran = {a.id: a for a in queue.execute(to_run, actor=AUTOMATION)}
    return [dataclasses.replace(o, action=ran[o.action_id])
            if o.action_id in ran and o.outcome == "created" else o for o in outcomes]


def _stopped(decisions: list[Decision], start: int, stored: list[SubmitOutcome],
             exc: Exception) -> str:
    first = decisions[start]
    where = (str(first.evidence.location) if first.evidence is not None
             and first.evidence.location is not None else f"investigation {first.investigation}")
    cause = str(exc) if isinstance(exc, AirgateError) else f"{type(exc).__name__}: {exc}"
    made = Counter(o.outcome for o in stored)
    return (f"submit stopped at decision {start + 1} of {len(decisions)} ({where}): {cause};"
            f" the {start} decisions before it were stored ({made['created']} created,"
            f" {made['merged']} merged, {made['unchanged']} unchanged, {made['excluded']}"
            f" excluded), the {len(decisions) - start} from it on were not; submitting the"
            " same evidence again stores only what is missing")


def _note_quiet(queue: Runtime, decisions: list[Decision], investigations: Iterable[str]) -> None:
    """Record investigations that gave no decision: they are ``no threats found``."""
    counted = {d.investigation for d in decisions}
    quiet = {inv: 0 for inv in investigations if inv not in counted}
    if quiet:
        with queue.store.write() as tx:
            tx.note_investigations(quiet, format_time(queue.now()))


def _enqueue_batch(
    queue: Runtime, batch: list[Decision], *, actor: str, catalog: Catalog
) -> tuple[list[SubmitOutcome], list[ActionRecord]]:
    # A batch holds thousands of new rows, records and ledger events until it commits,
    # and each collector pass rescans them: a fifth of a submit's time went to passes
    # that found nothing (benchmarks/README.md).
    with gc_paused():
        return _write_batch(queue, batch, actor=actor, catalog=catalog)


def _write_batch(
    queue: Runtime, batch: list[Decision], *, actor: str, catalog: Catalog
) -> tuple[list[SubmitOutcome], list[ActionRecord]]:
    now = queue.now()
    at = format_time(now)
    hour_ago = format_time(now - dt.timedelta(hours=1))
    outcomes: list[SubmitOutcome] = []
    rows: list[dict[str, Any]] = []
    evidence_rows: list[dict[str, Any]] = []
    investigations: Counter[str] = Counter()
    # What depends on a decision alone is done before the write lock is taken, so that
    # other writers (another server process, a worker, an approver) wait only for the
    # queries and inserts: each evidence document made JSON-safe, spelled and hashed.
    spelled = _Spelled()
    spellings = [None if d.suppressed_by else spelled(d) for d in batch]
    with queue.store.write() as tx:
        active = [d for d in batch if not d.suppressed_by]
        pending = tx.pending_for({(d.entity.key, d.action) for d in active})
        earlier = tx.submitted_for({(d.investigation, d.entity.key, d.action) for d in active})
        # (investigation, entity key, action) -> its action, here or in an earlier submit
        done_for = {triple: a.id for triple, a in earlier.items()}
        # Within the batch: (entity key, action) -> the row created for it.
        made: dict[tuple[str, str], dict[str, Any]] = {}
        automatic_used: Counter[str] = Counter()
        next_id = tx.next_action_id()
        expiry: dict[int, str] = {}  # expires_after -> expiry time, computed once per batch
        for d, spelling in zip(batch, spellings, strict=True):
            if spelling is None:  # excluded
                investigations[d.investigation] += 1
                outcomes.append(SubmitOutcome("excluded", d))
                continue
            triple = (d.investigation, d.entity.key, d.action)
            if triple in done_for:
                outcomes.append(SubmitOutcome("unchanged", d, done_for[triple]))
                continue
            investigations[d.investigation] += 1
            pair = (d.entity.key, d.action)
            data, text, digest = spelling
            target: ActionRecord | dict[str, Any] | None = pending.get(pair)
            if target is None and pair in made and made[pair]["status"] == PENDING:
                target = made[pair]
            if target is not None:
                target_id = target.id if isinstance(target, ActionRecord) else target["id"]
                evidence_rows.append({"action_id": target_id, "investigation": d.investigation,
                                      "added_at": at, "submitted_by": actor, "data": data,
                                      "data_json": text})
                tx.log(LedgerEvent("merged", actor, target_id, PENDING, PENDING, None,
                                   {"investigation": d.investigation, "rules": list(d.rules),
                                    "evidence": digest}),
                       at)
                outcomes.append(SubmitOutcome("merged", d, target_id))
                done_for[triple] = target_id
                continue
            after = d.approval.expires_after
            if after not in expiry:
                expiry[after] = time_after(now, after)
            row = _new_row(d, next_id, at, actor, catalog, data, expiry[after],
                           automated=queue.config.is_automation(actor))
            next_id += 1
            then: list[LedgerEvent] = []
            if not d.approval.required:
                then = _automatic(tx, d, row, pair, made, automatic_used, hour_ago, now, at,
                                  start=not queue.config.by_worker)
            tx.log(LedgerEvent("created", actor, row["id"], None, PENDING, row["reason"],
                               {"rules": list(d.rules), "approval": row["approval"],
                                "investigation": d.investigation, **_bound(row, digest)}), at)
            for event in then:
                tx.log(event, at)
            rows.append(row)
            made.setdefault(pair, row)
            evidence_rows.append({"action_id": row["id"], "investigation": d.investigation,
                                  "added_at": at, "submitted_by": actor, "data": data,
                                  "data_json": text})
            done_for[triple] = row["id"]
            outcomes.append(SubmitOutcome("created", d, row["id"]))
        tx.insert_actions(rows)
        tx.insert_evidence(evidence_rows)
        tx.note_investigations(investigations, at)
        if any(row["status"] == "approved" for row in rows):
            tx.notify_work()  # execution: worker: a worker runs the automatic ones
    # What was written is what the records say: built here instead of read back.
    records = {row["id"]: _record(row) for row in rows}
    records.update((a.id, a) for a in pending.values())
    records.update((a.id, a) for a in earlier.values())
    done = [dataclasses.replace(o, action=records[o.action_id])
            if o.action_id is not None else o for o in outcomes]
    started = [records[row["id"]] for row in rows if row["status"] == RUNNING]
    return done, started


def _bound(row: dict[str, Any], digest: str) -> dict[str, Any]:
    # What execution depends on, bound into the created entry: ``ledger verify`` compares
    # the tables with it, and approve and execute trust it over the mutable columns.
    return {"action_type": row["action_type"], "entity_key": row["entity_key"],
            "expires_at": row["expires_at"], "evidence": [digest]}


def _record(row: dict[str, Any]) -> ActionRecord:
    fields = {k: v for k, v in row.items() if k != "primary_rule"}
    return ActionRecord(**{**fields, "rules": tuple(row["rules"]),
                           "reasons": tuple(row["reasons"])})


def action_source(d: Decision, *, automated: bool) -> str:
    """Who proposed the action: the submitter decides it, never the evidence.

    Evidence is attacker-influenced, and a submitter may not approve their own manual
    action: so only a configured automation identity's submissions keep the evidence's
    ``action_source`` (automatedInvestigation, antivirus); a person's are manual. The
    evidence's own field stays in the stored evidence, as data.
    """
    if not automated:
        return "manual"
    claimed = d.evidence.action_source if d.evidence else "automatedInvestigation"
    return claimed if claimed in ("automatedInvestigation", "antivirus") else "manual"


def _new_row(d: Decision, action_id: int, at: str, actor: str, catalog: Catalog,
             data: dict[str, Any], expires_at: str, *, automated: bool) -> dict[str, Any]:
    spec = catalog.get(d.action)
    undo = None
    if spec is not None and spec.undo is not None:
        undo = {"action": spec.undo.action, "display_name": spec.undo.display_name,
                "bulk_by_hash": spec.undo.bulk_by_hash, "requires_role": spec.undo.requires_role}
    fields = data.get("fields") or {}
    return {
        "id": action_id, "investigation": d.investigation, "entity_type": d.entity.type,
        "entity_key": d.entity.key, "entity_name": d.entity.name,
        "entity_hash": entity_hash(fields) if isinstance(fields, dict) else None,
        "action_type": d.action, "status": PENDING, "version": 1,
        "source": action_source(d, automated=automated),
        "rules": list(d.rules), "approval": approval_dict(d), "reasons": list(d.reasons),
        "undo": undo, "revert_after": d.revert_after, "revert_at": None,
        "max_automatic_per_hour": d.max_automatic_per_hour,
        "created_at": at, "updated_at": at, "submitted_by": actor,
        "expires_at": expires_at, "approved_at": None,
        "decided_by": None, "decided_at": None, "reason": None, "link_id": None,
        "superseded_by": None, "operation": None, "run_key": None, "started_at": None,
        "result": None, "error": None,
    }


def _automatic(tx: Any, d: Decision, row: dict[str, Any],
               pair: tuple[str, str], made: dict[tuple[str, str], dict[str, Any]],
               used: Counter[str], hour_ago: str, now: dt.datetime,
               at: str, *, start: bool = True) -> list[LedgerEvent]:
    """Approve ``row`` as automation, or leave it pending (cap) or deduplicate it; returns
    the ledger events that follow its ``created`` entry. ``start``: mark it running for
    this process to carry out; else (``execution: worker``) leave it approved."""
    rule = d.rules[0] if d.rules else ""
    cap = d.max_automatic_per_hour
    if cap is not None:
        count = tx.count_automatic(rule, hour_ago) + used[rule]
        if count >= cap:
            row["reason"] = (f"automatic execution held for approval: rule {rule} already ran"
                             f" {count} automatic actions in the last hour"
                             f" (max_automatic_per_hour: {cap})")
            row["approval"] = {**row["approval"], "required": True, "capped": True}
            return []
    window = format_time(now - dt.timedelta(seconds=d.approval.dedup_window))
    first = tx.recent_approval(d.entity.key, d.action, window)
    in_batch = made.get(pair)
    first_id = first.id if first is not None else (
        in_batch["id"] if in_batch is not None and in_batch["approved_at"] is not None else None)
    row.update({"approved_at": at, "decided_by": AUTOMATION, "decided_at": at,
                "expires_at": None})
    events = [LedgerEvent("approved", AUTOMATION, row["id"], PENDING, "approved", None,
                          {"automatic": True})]
    if first_id is not None:
        row.update({"status": DEDUPLICATED, "link_id": first_id})
        events.append(LedgerEvent("deduplicated", AUTOMATION, row["id"], "approved",
                                  DEDUPLICATED, None, {"duplicate_of": first_id}))
        return events
    used[rule] += 1
    if not start:
        row["status"] = "approved"
        return events
    key = f"airgate:{row['id']}:apply:1"
    row.update({"status": RUNNING, "operation": "apply", "run_key": key, "started_at": at})
    events.append(LedgerEvent("started", AUTOMATION, row["id"], "approved", RUNNING, None,
                              {"operation": "apply", "idempotency_key": key}))
    return events
