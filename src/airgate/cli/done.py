"""What approve, reject, undo and redo did, in words: one line per action.

A table row says only where an action stands; an analyst needs to know whether
their approval carried the action out or is one of several the quorum waits for,
what a deduplicated action duplicates, and which devices an ``--all-instances``
undo reached. Entity names are evidence: every line is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from airgate.render import escape

if TYPE_CHECKING:
    from airgate.runtime.queue import Queue
    from airgate.runtime.records import ActionRecord


def subject(a: ActionRecord) -> str:
    return f"action {a.id} ({a.action_type} on {a.entity_type} {a.entity_name})"


def device_of(a: ActionRecord) -> str:
    """The device in a device-side key (``file:<hash>@<mdeDeviceId>``, docs/evidence.md)."""
    _, at, device = a.entity_key.rpartition("@")
    return device if at else "an unknown device"


def _approved(a: ActionRecord, approvers: Sequence[str], first: ActionRecord | None) -> str:
    quorum = int(a.approval.get("quorum", 1))
    if a.status == "pending":
        left = quorum - len(approvers)
        return (f"{subject(a)}: approval {len(approvers)} of {quorum} recorded; waiting for"
                f" {left} more (still pending)")
    if a.status == "deduplicated":
        dup = (f"action {a.link_id}" if first is None else
               f"{subject(first)}, {first.status}")
        return f"{subject(a)}: approved, not carried out again: duplicate of {dup}"
    if a.status == "failed":
        return f"{subject(a)}: approved and carried out: failed: {a.error or 'no reason given'}"
    if a.status == "approved":  # execution: worker
        return f"{subject(a)}: approved; queued for `airgate worker` to carry out"
    if a.status == "running":  # the executor's request got no answer (or its outcome was lost)
        return (f"{subject(a)}: approved; outcome unknown (no answer from the executor): left"
                f" running under {a.run_key} for `airgate tick` to reconcile")
    return f"{subject(a)}: approved and carried out: {a.status}"


def say_approved(queue: Queue, actions: Sequence[ActionRecord]) -> None:
    approvers = queue.approvers([a.id for a in actions])
    firsts = {f.id: f for f in queue.get_many(
        [a.link_id for a in actions if a.status == "deduplicated" and a.link_id])}
    for a in actions:
        first = firsts.get(a.link_id) if a.link_id is not None else None
        echo(_approved(a, approvers.get(a.id, []), first))


def say_rejected(actions: Sequence[ActionRecord]) -> None:
    for a in actions:
        echo(f"{subject(a)}: rejected by {a.decided_by}: {a.reason}")


def say_undone(actions: Sequence[ActionRecord], asked: Sequence[int],
               all_instances: bool, *, queued: bool = False) -> None:
    """``queued`` (execution: worker): the undo is a request a worker carries out."""
    if all_instances:
        extra = [a for a in actions if a.id not in set(asked)]
        hashes = sorted({a.entity_hash for a in actions if a.entity_hash})
        devices = sorted({device_of(a) for a in actions})
        echo(f"--all-instances: {len(actions)} action(s) matched"
             f" ({len(extra)} beyond those named) on hash {', '.join(hashes) or 'none'},"
             f" on {len(devices)} device(s): {', '.join(devices)}")
    for a in actions:
        where = f" on {device_of(a)}" if all_instances else ""
        if queued and a.status == "completed":
            echo(f"{subject(a)}{where}: undo requested; queued for `airgate worker`")
        elif a.status == "undone":
            echo(f"{subject(a)}{where}: undone")
        else:
            # A failed undo leaves the effect in place: the action stays completed.
            echo(f"{subject(a)}{where}: undo failed, still {a.status}:"
                 f" {a.error or 'no reason given'}")


def say_redone(new: ActionRecord, old: ActionRecord) -> None:
    roles = ", ".join(new.approval.get("roles", ()))
    echo(f"{subject(new)}: created from {subject(old)}, now {old.status};"
         f" pending approval by {roles} (quorum {new.approval.get('quorum', 1)})")


def counted(verb: str, ids: Sequence[int]) -> str:
    """``expire`` and ``tick`` report alike: ``expired 2 action(s): 4, 5``."""
    return f"{verb} {len(ids)} action(s)" + (": " + ", ".join(map(str, ids)) if ids else "")


def echo(line: str) -> None:
    click.echo(escape(line))


__all__ = ["counted", "say_approved", "say_redone", "say_rejected", "say_undone"]
