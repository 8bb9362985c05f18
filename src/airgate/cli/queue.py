"""The queue commands: actions, show, approve, reject, history, undo, redo,
investigations, expire, tick (submit is ``cli/submit.py``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from airgate.cli.runtime_common import (
    ACTION_ID,
    ROW_LIMIT,
    acting,
    actor_option,
    db_options,
    echo_json,
    emit_actions,
    open_queue,
    parse_since,
)
from airgate.errors import EXIT_FAILED, PolicyLoadErrors, TransitionError
from airgate.runtime.export import short_time
from airgate.runtime.records import OPEN, SETTLED, STATUSES, ActionFilter

DEFAULT_LIMIT = 200
F = TypeVar("F", bound=Callable[..., Any])


def _fmt(*choices: str) -> Callable[[F], F]:
    return click.option("--format", "fmt", type=click.Choice(list(choices)),
                        default=choices[0], show_default=True)


def _policies(paths: tuple[str, ...]) -> Any:
    """The policy set, or every load finding at its location and exit 1."""
    from airgate.policy.loader import load_policy_set

    try:
        return load_policy_set(list(paths))
    except PolicyLoadErrors as exc:
        for finding in exc.findings:
            click.echo(f"airgate: error: {finding.location}: {finding.code}: {finding.message}",
                       err=True)
        sys.exit(EXIT_FAILED)


def _filter_options(func: F) -> F:
    for opt in reversed([
        click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES),
                     help="Only these statuses (repeatable)."),
        click.option("--investigation", metavar="ID"),
        click.option("--action-type", metavar="TYPE"),
        click.option("--source", metavar="SOURCE",
                     help="automatedInvestigation, antivirus or manual."),
        click.option("--since", metavar="TIME|DURATION",
                     help="ISO 8601 time, or a duration back from now such as 24h or 7d."),
        click.option("--limit", type=ROW_LIMIT, default=DEFAULT_LIMIT,
                     show_default=True, help="At most this many rows; 0 for all."),
    ]):
        func = opt(func)
    return func


def _list(queue: Any, flt: ActionFilter, fmt: str, history: bool) -> None:
    from airgate.runtime.clock import format_time

    wanted = flt.limit
    rows = queue.list_actions(flt if not wanted else ActionFilter(
        **{**flt.__dict__, "limit": wanted + 1}))
    if wanted and len(rows) > wanted:
        rows = rows[:wanted]
        click.echo(f"airgate: showing the first {wanted} actions; --limit 0 shows all",
                   err=True)
    undone_by = None
    if history:
        # decided_by is who approved; who undid an action is in its ledger entries.
        undone_by = {i: actor for i, (actor, _) in queue.undone_by(
            [a.id for a in rows if a.status == "undone"]).items()}
    emit_actions(rows, fmt, history=history, undone_by=undone_by, now=format_time(queue.now()))


@click.command("actions")
@_filter_options
@_fmt("table", "json", "csv")
@db_options
def actions(statuses: tuple[str, ...], investigation: str | None, action_type: str | None,
            source: str | None, since: str | None, limit: int, fmt: str, db: str | None,
            config_path: str | None) -> None:
    """List open actions (pending, approved, running) or those of --status, oldest first."""
    queue = open_queue(db, config_path, maintain=False)
    flt = ActionFilter(statuses or OPEN, investigation, action_type, source,
                       parse_since(since, queue.now()), None, limit or None)
    _list(queue, flt, fmt, history=False)


@click.command("history")
@_filter_options
@click.option("--decided-by", metavar="ACTOR")
@_fmt("table", "json", "csv")
@db_options
def history(statuses: tuple[str, ...], investigation: str | None, action_type: str | None,
            source: str | None, since: str | None, limit: int, decided_by: str | None, fmt: str,
            db: str | None, config_path: str | None) -> None:
    """List settled actions, most recently changed first (--since filters on that change)."""
    from airgate.runtime.config import normalize_actor

    queue = open_queue(db, config_path, maintain=False)
    flt = ActionFilter(statuses or SETTLED, investigation, action_type, source,
                       parse_since(since, queue.now()),
                       None if decided_by is None else normalize_actor(decided_by), limit or None,
                       newest_first=True, by_update=True)
    _list(queue, flt, fmt, history=True)


@click.command("show")
@click.argument("action_ids", nargs=-1, required=True, type=ACTION_ID)
@_fmt("text", "json")
@db_options
def show(action_ids: tuple[int, ...], fmt: str, db: str | None,
         config_path: str | None) -> None:
    """The whole story of actions: evidence, decision, approvals, results, ledger.

    With several ids, JSON is a list of stories; text separates them by a blank line."""
    from airgate.runtime.clock import format_time

    queue = open_queue(db, config_path, maintain=False)
    queue.get_many(action_ids)  # every missing id named at once, before any output
    stories = [queue.show(i) for i in dict.fromkeys(action_ids)]
    if fmt == "json":
        echo_json(stories[0] if len(action_ids) == 1 else stories)
        return
    for n, story in enumerate(stories):
        if n:
            click.echo("")
        _show_text(story, format_time(queue.now()))


def _show_text(story: dict[str, Any], now: str) -> None:
    from airgate.render import escape, table

    a = story["action"]
    lines = [
        f"action {a['id']}: {a['action_type']} on {a['entity_type']} {a['entity_name']}",
        f"status: {a['status']}",
        f"investigation: {a['investigation']}",
        f"entity key: {a['entity_key']}",
        f"source: {a['source']}; submitted by {a['submitted_by']} at"
        f" {short_time(a['created_at'])}",
        f"rules: {', '.join(a['rules'])}",
        "approval: " + ("automatic" if not a["approval"].get("required") else
                        f"required by {', '.join(a['approval'].get('roles', []))}"
                        f" (quorum {a['approval'].get('quorum', 1)})"),
        f"undo: {a['undo']['display_name'] if a['undo'] else 'none (not undoable)'}",
    ]
    claimed = sorted({str(e["data"].get("action_source")) for e in story["evidence"]
                      if isinstance(e["data"], dict) and e["data"].get("action_source")})
    if claimed and claimed != [a["source"]]:
        # The evidence's own word, as data: it never decides the source (see submit).
        lines.append(f"evidence says source: {', '.join(claimed)}")
    for reason in a["reasons"]:
        lines.append(f"reason: {reason}")
    if a["status"] == "pending" and a["expires_at"]:
        overdue = a["expires_at"] <= now
        lines.append(f"expires at: {short_time(a['expires_at'])}" + (
            " (passed: expired, recorded by the next airgate tick)" if overdue else ""))
    if a["revert_at"]:
        lines.append(f"reverts automatically at: {short_time(a['revert_at'])}")
    for name in ("decided_by", "reason", "link_id", "superseded_by", "error"):
        if a.get(name):
            lines.append(f"{name.replace('_', ' ')}: {a[name]}")
    if a["result"] is not None:
        # JSON, not a Python repr: executors return JSON and readers may paste it.
        lines.append("result: " + json.dumps(a["result"], sort_keys=True, ensure_ascii=False))
    click.echo("\n".join(escape(line) for line in lines))
    click.echo(f"\nevidence ({len(story['evidence'])}):")
    for e in story["evidence"]:
        data = e["data"]
        click.echo(escape(f"  {short_time(e['added_at'])} {e['investigation']}"
                          f" {data.get('verdict', '')} {data.get('name', '')}"
                          f" (by {e['submitted_by']})"))
    if story["approvals"]:
        click.echo("\napprovals:")
        for ap in story["approvals"]:
            click.echo(escape(f"  {short_time(ap['at'])} {ap['actor']}"
                              + (f": {ap['comment']}" if ap["comment"] else "")))
    click.echo("\nledger:")
    # A worker's entries say which worker wrote them (execution: worker).
    by_worker = any(e["details"].get("worker") for e in story["ledger"])
    headers = ("seq", "at", "event", "actor", "before", "after", "comment")
    click.echo(table((*headers, "worker") if by_worker else headers, [
        (e["seq"], short_time(e["at"]), e["event"], e["actor"], e["state_before"] or "",
         e["state_after"] or "", e["comment"] or "",
         *((str(e["details"].get("worker") or ""),) if by_worker else ()))
        for e in story["ledger"]]))


def _ids_command(name: str, help_text: str) -> Callable[[Callable[..., Any]], click.Command]:
    def deco(func: Callable[..., Any]) -> click.Command:
        func = click.argument("ids", nargs=-1, type=ACTION_ID)(func)
        return click.command(name, help=help_text)(func)
    return deco


def _bulk_options(func: F) -> F:
    func = click.option("--action-type", metavar="TYPE",
                        help="With --investigation: only this action type.")(func)
    return click.option("--investigation", metavar="ID",
                        help="Every pending action of this investigation (with --action-type"
                             " when it holds several types).")(func)


def _chosen(queue: Any, ids: tuple[int, ...], investigation: str | None,
            action_type: str | None, verb: str) -> list[int]:
    """The ids named, or the pending actions an --investigation filter selects."""
    if ids and (investigation or action_type):
        raise click.UsageError(f"{verb} either ids or --investigation, not both")
    if ids:
        return list(ids)
    if not investigation:
        raise click.UsageError(f"name the actions to {verb}: ids, or --investigation ID"
                               " [--action-type TYPE]")
    found = queue.list_actions(ActionFilter(("pending",), investigation, action_type))
    if not found:
        raise TransitionError(f"no pending action in investigation {investigation}"
                              + (f" of type {action_type}" if action_type else ""))
    return [a.id for a in found]


@_ids_command("approve", "Approve pending actions (several only of one action type), by id or"
              " by --investigation with --action-type.")
@click.option("--comment", help="Why (required when the policy says require_comment).")
@click.option("--dry-run", is_flag=True,
              help="Show the requests the executor would send (secrets masked); approve,"
                   " send and record nothing.")
@_bulk_options
@_fmt("text", "table", "json")
@actor_option
@db_options
def approve(ids: tuple[int, ...], comment: str | None, dry_run: bool,
            investigation: str | None, action_type: str | None, fmt: str, actor: str | None,
            db: str | None, config_path: str | None) -> None:
    queue = open_queue(db, config_path, maintain=not dry_run)
    chosen = _chosen(queue, ids, investigation, action_type, "approve")
    if dry_run:
        from airgate.cli.dryrun import show

        show(queue, chosen, "json" if fmt == "json" else "text")
        return
    done = queue.approve(chosen, actor=acting(queue, actor), comment=comment)
    if fmt == "text":
        from airgate.cli.done import say_approved

        say_approved(queue, done)
    else:
        emit_actions(done, fmt)


@_ids_command("reject", "Reject pending actions with a reason (several only of one type), by id"
              " or by --investigation with --action-type.")
@click.option("--reason", required=True, help="Why the action is rejected.")
@_bulk_options
@_fmt("text", "table", "json")
@actor_option
@db_options
def reject(ids: tuple[int, ...], reason: str, investigation: str | None,
           action_type: str | None, fmt: str, actor: str | None, db: str | None,
           config_path: str | None) -> None:
    queue = open_queue(db, config_path)
    chosen = _chosen(queue, ids, investigation, action_type, "reject")
    done = queue.reject(chosen, actor=acting(queue, actor), reason=reason)
    if fmt == "text":
        from airgate.cli.done import say_rejected

        say_rejected(done)
    else:
        emit_actions(done, fmt)


@_ids_command("undo", "Undo completed actions through their executor (one action type).")
@click.option("--all-instances", is_flag=True,
              help="For a quarantined file: also every other instance of the same hash.")
@click.option("--comment")
@_fmt("text", "table", "json")
@actor_option
@db_options
def undo(ids: tuple[int, ...], all_instances: bool, comment: str | None, fmt: str,
         actor: str | None, db: str | None, config_path: str | None) -> None:
    if not ids:
        raise click.UsageError("name the actions to undo")
    queue = open_queue(db, config_path)
    done = queue.undo(list(ids), actor=acting(queue, actor), comment=comment,
                      all_instances=all_instances)
    if fmt == "text":
        from airgate.cli.done import say_undone

        say_undone(done, ids, all_instances, queued=queue.config.by_worker)
    else:
        emit_actions(done, fmt)


@click.command("redo")
@click.argument("action_id", type=ACTION_ID)
@click.option("--action", "action_type", required=True, metavar="TYPE",
              help="The new action type (e.g. move_to_inbox after soft_delete_email).")
@click.option("--policy", "policy_paths", multiple=True, required=True,
              help="The current policy set (repeatable): the new action gets the approval it"
                   " gives the new type on that entity, never weaker than the old one's.")
@click.option("--comment")
@_fmt("text", "table", "json")
@actor_option
@db_options
def redo(action_id: int, action_type: str, policy_paths: tuple[str, ...], comment: str | None,
         fmt: str, actor: str | None, db: str | None, config_path: str | None) -> None:
    """Change an action's type: a new pending action linked to it; the old one is superseded.

    It needs an approver role of the new action (or global-admin); its approval is the
    strongest of the old action's, the new type's catalog default and what --policy
    gives the new type on that entity; an exclusion there refuses the change.
    """
    from airgate.engine import core as engine_mod

    policy_set = _policies(policy_paths)
    queue = open_queue(db, config_path)
    created = queue.redo(action_id, action_type=action_type, actor=acting(queue, actor),
                         comment=comment,
                         catalog=policy_set.catalog, engine=engine_mod.compile(policy_set))
    if fmt == "text":
        from airgate.cli.done import say_redone

        say_redone(created, queue.get(action_id))
    else:
        emit_actions([created], fmt)


@click.command("investigations")
@_fmt("table", "json")
@db_options
def investigations(fmt: str, db: str | None, config_path: str | None) -> None:
    """Each investigation with its status derived from its actions (docs/runtime.md)."""
    from airgate.render import table

    rows = open_queue(db, config_path, maintain=False).investigations()
    if fmt == "json":
        echo_json(rows)
    elif rows:
        click.echo(table(("investigation", "status", "actions", "by status"), [
            (r["investigation"], r["status"], r["actions"],
             ", ".join(f"{k} {v}" for k, v in sorted(r["counts"].items()))) for r in rows]))
    else:
        click.echo("no investigations")


@click.command("expire")
@_fmt("table", "json")
@db_options
def expire(fmt: str, db: str | None, config_path: str | None) -> None:
    """Expire pending actions past their time-out (they count as rejected)."""
    expired = open_queue(db, config_path, maintain=False).expire()
    if fmt == "json":
        echo_json({"expired": expired})
    else:
        from airgate.cli.done import counted

        click.echo(counted("expired", expired))


@click.command("tick")
@_fmt("table", "json")
@db_options
def tick(fmt: str, db: str | None, config_path: str | None) -> None:
    """Expiries, due timed reverts, and reconciliation of runs whose process died."""
    report = open_queue(db, config_path, maintain=False).tick()
    if fmt == "json":
        echo_json(report.as_dict())
        return
    from airgate.cli.done import counted

    for name, ids in report.as_dict().items():
        click.echo(counted(name, ids))


COMMANDS: dict[str, click.Command] = {
    "actions": actions, "show": show, "approve": approve, "reject": reject,
    "history": history, "undo": undo, "redo": redo, "investigations": investigations,
    "expire": expire, "tick": tick,
}
