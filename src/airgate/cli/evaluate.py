"""``airgate evaluate``: evidence in, decisions out (table, JSON or NDJSON)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import click

from airgate.cli.runtime_common import JOBS
from airgate.errors import EXIT_FAILED, Finding, PolicyLoadErrors
from airgate.model import Decision, Evidence

PROGRESS_EVERY = 10_000
TABLE_HEADERS = ("investigation", "entity type", "name", "action", "approval", "rules",
                 "excluded by")


def approval_cell(decision: Decision) -> str:
    """``auto`` or ``required: role1,role2 x2``."""
    approval = decision.approval
    if not approval.required:
        return "auto"
    return f"required: {','.join(approval.roles)} x{approval.quorum}"


def table_row(decision: Decision) -> tuple[str, ...]:
    return (decision.investigation, decision.entity.type, decision.entity.name,
            decision.action, approval_cell(decision), ",".join(decision.rules),
            ",".join(decision.suppressed_by))


class _Progress:
    """A count of evaluated items on stderr, for a person watching it."""

    def __init__(self) -> None:
        self.count = 0

    def add(self, items: int) -> None:
        before = self.count
        self.count += items
        if self.count // PROGRESS_EVERY > before // PROGRESS_EVERY:
            sys.stderr.write(f"\r{self.count} evidence items evaluated")
            sys.stderr.flush()

    def close(self) -> None:
        if self.count >= PROGRESS_EVERY:
            sys.stderr.write(f"\r{self.count} evidence items evaluated\n")


def _progress(items: Iterable[Evidence]) -> Iterator[Evidence]:
    """Count items on stderr, only when a person is watching it."""
    if not sys.stderr.isatty():
        yield from items
        return
    progress = _Progress()
    for item in items:
        progress.add(1)
        yield item
    progress.close()


@click.command("evaluate")
@click.argument("evidence", nargs=-1, required=True)
@click.option("--policy", "policy_paths", multiple=True, required=True,
              help="Policy file or directory (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "ndjson"]),
              default="table", show_default=True)
@click.option("--explain", is_flag=True,
              help="Show each condition of each matched rule with its value, and the"
                   " nearest rules for evidence that got no decision.")
@click.option("--engine", "engine_name", type=click.Choice(["indexed", "durable"]),
              default="indexed", show_default=True)
@click.option("--jobs", "-j", type=JOBS, default=0, show_default=True,
              help="Worker processes for --format ndjson (0: one per CPU, at most 8, when"
                   " every input is a regular file, else 1; 1: this process only)."
                   " Output is the same either way.")
@click.option("--strict", is_flag=True,
              help="Exit 1 when reading the evidence gave a warning (an unknown evidence"
                   " type, an input that holds no evidence); the decisions are written all"
                   " the same.")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), hidden=True,
              help="Evaluate as of this date (exclusion expiry).")
def command(evidence: tuple[str, ...], policy_paths: tuple[str, ...], fmt: str, explain: bool,
            engine_name: str, jobs: int, strict: bool, today: dt.datetime | None) -> None:
    """Decide the actions EVIDENCE gets under a policy set.

    EVIDENCE: native investigations, Graph alerts, incidents or list responses,
    Microsoft 365 Defender incidents, NDJSON of any of them, JSON or YAML; '-'
    reads standard input. An input that gives no evidence at all is reported
    as a warning.
    """
    from airgate.engine import core as engine_mod
    from airgate.engine import explain as explain_mod
    from airgate.engine.decision_json import decision_to_dict
    from airgate.evidence.reader import iter_evidence
    from airgate.policy.loader import load_policy_set
    from airgate.render import escape, table

    day = today.date() if today else None
    try:
        policy_set = load_policy_set(list(policy_paths), today=day)
    except PolicyLoadErrors as exc:
        for finding in exc.findings:
            click.echo(f"airgate: error: {finding.location}: {finding.code}: {finding.message}",
                       err=True)
        sys.exit(EXIT_FAILED)
    engine = engine_mod.compile(policy_set, engine=engine_name, today=day)
    catalog = policy_set.catalog
    warnings: list[Finding] = []

    def on_warning(finding: Finding) -> None:
        warnings.append(finding)
        click.echo(f"airgate: warning: {escape(str(finding))}", err=True)

    if fmt == "ndjson":
        from airgate.engine.streaming import write_ndjson

        progress = _Progress() if sys.stderr.isatty() else None
        write_ndjson(engine, evidence, sys.stdout.write, catalog=catalog, explain=explain,
                     jobs=jobs, on_warning=on_warning,
                     on_items=progress.add if progress else None, flush=sys.stdout.flush)
        if progress:
            progress.close()
        _fail_if_strict(strict, warnings)
        return

    def as_dict(decision: Decision) -> dict[str, Any]:
        out = decision_to_dict(decision, catalog)
        if explain:
            out["explanation"] = explain_mod.explain_decision(engine.compiled, decision)
        return out

    items = _progress(itertools.chain.from_iterable(
        iter_evidence(source, on_warning=on_warning) for source in evidence))
    decisions: list[Decision] = []
    unmatched: list[dict[str, Any]] = []
    for batch in engine.iter_batches(items):
        decisions.extend(batch.decisions)
        if explain:
            unmatched.extend(explain_mod.explain_unmatched(engine.compiled, ev)
                             for ev in batch.unmatched)
    if fmt == "json":
        document: dict[str, Any] = {"decisions": [as_dict(d) for d in decisions],
                                    "warnings": [w.as_dict() for w in warnings]}
        if explain:
            document["no_decision"] = unmatched
        click.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))
        _fail_if_strict(strict, warnings)
        return
    if decisions:
        click.echo(table(TABLE_HEADERS, [table_row(d) for d in decisions]))
    else:
        click.echo("no decisions")
    if explain:
        for decision in decisions:
            click.echo("")
            click.echo(explain_text_header(decision))
            for line in explain_mod.explanation_text(
                    explain_mod.explain_decision(engine.compiled, decision)):
                click.echo(line)
            for reason in decision.reasons:
                click.echo(f"  reason: {escape(reason)}")
        for record in unmatched:
            click.echo("")
            for line in explain_mod.unmatched_text(record):
                click.echo(line)
    _fail_if_strict(strict, warnings)


def _fail_if_strict(strict: bool, warnings: list[Finding]) -> None:
    if strict and warnings:
        count = "1 warning" if len(warnings) == 1 else f"{len(warnings)} warnings"
        click.echo(f"airgate: error: --strict: reading the evidence gave {count}", err=True)
        sys.exit(EXIT_FAILED)


def explain_text_header(decision: Decision) -> str:
    from airgate.render import escape

    state = f" (suppressed by {', '.join(decision.suppressed_by)})" if decision.excluded else ""
    return (f"{escape(decision.action)} on {escape(decision.entity.type)}"
            f" {escape(decision.entity.name)} in investigation"
            f" {escape(decision.investigation)}: {approval_cell(decision)}{state}")
