"""``airgate diff``: the decisions a policy change would add, remove or change."""

from __future__ import annotations

import datetime as dt
import json

import click

from airgate.checks.diff import Change, change_to_dict, policy_impact
from airgate.errors import EXIT_FAILED, EXIT_OK, PolicyLoadErrors
from airgate.evidence.reader import load_evidence
from airgate.render import table


def _side(change: Change, before: bool) -> str:
    decision = change.before if before else change.after
    if decision is None:
        return "-"
    if change.kind == "changed":
        return "; ".join(
            f"{c.field}={_value(c.before if before else c.after)}" for c in change.fields
        )
    mode = "required" if decision.approval.required else "auto"
    text = f"{mode} ({','.join(decision.approval.roles)}"
    text += f", quorum {decision.approval.quorum})" if decision.approval.quorum > 1 else ")"
    if decision.excluded:
        text += " excluded by " + ",".join(decision.suppressed_by)
    return text


def _value(value: object) -> str:
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    return str(value)


@click.command()
@click.option("--base", "base", required=True, multiple=True, type=click.Path(exists=True),
              metavar="PATH", help="Policy file or directory before the change (repeatable).")
@click.option("--head", "head", required=True, multiple=True, type=click.Path(exists=True),
              metavar="PATH", help="Policy file or directory after the change (repeatable).")
@click.argument("evidence", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table",
              show_default=True)
@click.option("--engine", type=click.Choice(("indexed", "durable")), default="indexed",
              show_default=True)
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Date for exclusion expiry (default: today).")
@click.option("--exit-code", "exit_code", is_flag=True,
              help="Exit 1 when the change alters any decision (like git diff --exit-code).")
def command(
    base: tuple[str, ...], head: tuple[str, ...], evidence: tuple[str, ...], fmt: str,
    engine: str, today: dt.datetime | None, exit_code: bool,
) -> None:
    """Evaluate EVIDENCE (files, or - for stdin) under the base and head policies and list
    the decisions added, removed or changed.

    Decisions are matched by investigation, entity key and action. Exit 0 whatever
    the diff holds, unless --exit-code is given: then 1 when it is not empty.
    Invalid policies or evidence exit 1, usage errors 2.
    """
    items = load_evidence(list(evidence))
    try:
        impact = policy_impact(list(base), list(head), items, engine=engine,
                               today=today.date() if today else None)
    except PolicyLoadErrors as exc:
        for finding in exc.findings:
            click.echo(f"airgate: {finding}", err=True)
        raise click.exceptions.Exit(EXIT_FAILED) from None
    counts = {k: impact.count(k) for k in ("added", "removed", "changed")}
    if fmt == "json":
        doc = {
            "summary": {**counts, "unchanged": impact.unchanged},
            "changes": [change_to_dict(c, impact.before_catalog, impact.after_catalog)
                        for c in impact.changes],
        }
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        if impact.changes:
            rows = [
                (c.kind, c.decision.investigation, f"{c.decision.entity.type} "
                 f"{c.decision.entity.name}", c.decision.action, _side(c, True), _side(c, False))
                for c in impact.changes
            ]
            click.echo(table(("change", "investigation", "entity", "action", "before", "after"),
                             rows))
        summary = (f"{counts['added']} added, {counts['removed']} removed, {counts['changed']}"
                   f" changed, {impact.unchanged} unchanged")
        click.echo(summary)
    failed = exit_code and bool(impact.changes)
    click.get_current_context().exit(EXIT_FAILED if failed else EXIT_OK)
