"""``airgate submit``: evaluate evidence and enqueue the decisions, saying what each became."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import click

from airgate.cli.runtime_common import (
    acting,
    actor_option,
    db_options,
    echo_json,
    open_queue,
    resolve_actor,
)
from airgate.errors import EXIT_FAILED, Finding, PolicyLoadErrors
from airgate.runtime.submit import SubmitIncomplete, SubmitOutcome

if TYPE_CHECKING:
    from airgate.catalog import Catalog
    from airgate.model import Evidence


@click.command("submit")
@click.argument("evidence", nargs=-1, required=True)
@click.option("--policy", "policy_paths", multiple=True, required=True,
              help="Policy file or directory (repeatable).")
@click.option("--engine", "engine_name", type=click.Choice(["indexed", "durable"]),
              default="indexed", show_default=True)
@click.option("--strict", is_flag=True,
              help="Submit nothing and exit 1 when reading the evidence gave a warning"
                   " (an unknown evidence type, an input that holds no evidence).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@actor_option
@db_options
def submit(evidence: tuple[str, ...], policy_paths: tuple[str, ...], engine_name: str,
           strict: bool, fmt: str, actor: str | None, db: str | None,
           config_path: str | None) -> None:
    """Evaluate EVIDENCE under a policy set and enqueue the resulting actions.

    Automatic actions are approved by 'automation' and carried out at once;
    the rest wait as pending. Evidence for an entity and action already
    pending is attached to that action. Excluded decisions are listed, not queued.
    """
    from airgate.engine import core as engine_mod
    from airgate.evidence.reader import iter_evidence
    from airgate.policy.loader import load_policy_set

    resolve_actor(actor)  # an empty --actor fails before any evaluation
    try:
        policy_set = load_policy_set(list(policy_paths))
    except PolicyLoadErrors as exc:
        for finding in exc.findings:
            click.echo(f"airgate: error: {finding.location}: {finding.code}: {finding.message}",
                       err=True)
        sys.exit(EXIT_FAILED)

    warned: list[Finding] = []

    def on_warning(finding: Finding) -> None:
        warned.append(finding)
        click.echo(f"airgate: warning: {finding}", err=True)

    engine = engine_mod.compile(policy_set, engine=engine_name)
    seen: dict[str, None] = {}  # every investigation read, decisions or not

    def noted(items: Iterable[Evidence]) -> Iterator[Evidence]:
        for item in items:
            seen.setdefault(item.investigation)
            yield item

    items = itertools.chain.from_iterable(
        noted(iter_evidence(source, on_warning=on_warning)) for source in evidence)
    decisions = engine.evaluate(items)
    if strict and warned:
        click.echo(f"airgate: error: --strict: reading the evidence gave {len(warned)}"
                   " warning(s); nothing submitted", err=True)
        sys.exit(EXIT_FAILED)
    queue = open_queue(db, config_path, create=True)
    try:
        outcomes = queue.submit(decisions, actor=acting(queue, actor), catalog=policy_set.catalog,
                                investigations=seen)
    except SubmitIncomplete as exc:
        _emit_outcomes(exc.outcomes, fmt, policy_set.catalog)
        raise
    _emit_outcomes(outcomes, fmt, policy_set.catalog)


def _emit_outcomes(outcomes: Sequence[SubmitOutcome], fmt: str, catalog: Catalog) -> None:
    from airgate.engine.decision_json import decision_to_dict
    from airgate.render import table
    from airgate.runtime.export import action_note

    if fmt == "json":
        echo_json([{
            "outcome": o.outcome,
            "action_id": o.action_id,
            "status": o.action.status if o.action else None,
            "action": o.action.as_dict() if o.action else None,
            "decision": decision_to_dict(o.decision, catalog),
        } for o in outcomes])
        return
    if not outcomes:
        click.echo("no actions")
        return
    rows = []
    for o in outcomes:
        a = o.action
        note = ""
        if o.outcome == "excluded":
            note = "excluded by " + ", ".join(o.decision.suppressed_by)
        elif o.outcome == "unchanged" and a is not None:
            note = f"already submitted: action {a.id}, {a.status}"
        elif a is not None:
            note = action_note(a)
        rows.append((o.action_id or "", o.outcome, a.status if a else "",
                     o.decision.investigation, o.decision.action, o.decision.entity.type,
                     o.decision.entity.name, note))
    click.echo(table(("id", "outcome", "status", "investigation", "action", "entity type",
                      "entity", "note"), rows))


command = submit
