"""``approve --dry-run``: the requests each action's executor would send if approving it
ran it now, secrets masked. Records nothing (no approval, no ledger entry) and sends
nothing; evidence in a URL or body is escaped when printed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from airgate.cli.done import subject
from airgate.cli.runtime_common import echo_json
from airgate.render import escape

if TYPE_CHECKING:
    from airgate.runtime.executors.base import PlannedRequest
    from airgate.runtime.queue import Queue
    from airgate.runtime.records import ActionRecord


def _blocked(action: ActionRecord, approvals: int) -> str | None:
    """Why approving would not run the action now, if it would not."""
    if action.status != "pending":
        return f"it is {action.status}: approving it would be refused"
    quorum = int(action.approval.get("quorum", 1))
    if approvals + 1 < quorum:
        return (f"approval {approvals + 1} of {quorum} would be recorded; it would not run"
                " yet")
    return None


def show(queue: Queue, ids: Sequence[int], fmt: str) -> None:
    actions = queue.get_many(ids)
    approvers = queue.approvers([a.id for a in actions])
    blocked = {a.id: _blocked(a, len(approvers.get(a.id, []))) for a in actions}
    runnable = [a for a in actions if blocked[a.id] is None]
    plans = dict(zip([a.id for a in runnable], queue.plan(runnable), strict=True))
    rows: list[dict[str, Any]] = []
    for a in actions:
        plan = plans.get(a.id)
        executor = queue.executor_for(a.action_type).name
        rows.append({"id": a.id, "action_type": a.action_type, "executor": executor,
                     "would_run": plan is not None,
                     "note": blocked[a.id] if plan is None else (
                         plan if isinstance(plan, str) else None),
                     "requests": [r.as_dict() for r in plan] if isinstance(plan, list) else []})
    if fmt == "json":
        echo_json(rows)
        return
    for a, row in zip(actions, rows, strict=True):
        plan = plans.get(a.id)
        if not isinstance(plan, list):
            click.echo(escape(f"{subject(a)}: {row['note']}"))
            continue
        click.echo(escape(f"{subject(a)}: {row['executor']} would send:"))
        for request in plan:
            _echo_request(request)
    click.echo("dry run: nothing approved, sent or recorded")


def _echo_request(request: PlannedRequest) -> None:
    note = f"  ({request.note})" if request.note else ""
    click.echo(escape(f"  {request.method} {request.url}{note}"))
    for name, value in request.headers.items():
        click.echo(escape(f"    {name}: {value}"))
    if request.body is not None:
        body = json.dumps(request.body, sort_keys=True, ensure_ascii=False, default=str)
        click.echo(escape(f"    body: {body}"))
