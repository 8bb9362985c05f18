"""``airgate actions-catalog``: the remediation actions a policy may use."""

from __future__ import annotations

import json

import click

from airgate.catalog import DEFAULT_CATALOG, ActionSpec, Catalog
from airgate.checks.report import render_text
from airgate.errors import EXIT_FAILED, PolicyLoadErrors

_COLUMNS = ("ID", "NAME", "CATEGORY", "TARGETS", "UNDO", "APPROVER")


def _clean(text: str) -> str:
    # Custom action names come from policy files: never let them drive the terminal.
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _row(spec: ActionSpec) -> tuple[str, ...]:
    if spec.undo is None:
        undo = "no" if not spec.change_to else "change to " + "/".join(spec.change_to)
    else:
        undo = spec.undo.action + (" (bulk by hash)" if spec.undo.bulk_by_hash else "")
    name = spec.display_name + (" [custom]" if spec.custom else "")
    return tuple(
        _clean(x)
        for x in (spec.id, name, spec.category, ",".join(sorted(spec.targets)), undo,
                  spec.approver_role)
    )


def render_table(catalog: Catalog) -> str:
    rows = [_COLUMNS] + [_row(spec) for spec in catalog]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() + "\n"
        for r in rows
    )


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.option("--policy", "policy_paths", multiple=True, type=click.Path(exists=True),
              help="Also list the custom actions this policy file or directory declares.")
def command(fmt: str, policy_paths: tuple[str, ...]) -> None:
    """List the remediation actions: id, category, targets, undo, default approver role.

    global-admin may approve any action in addition to the role shown.
    """
    catalog = DEFAULT_CATALOG
    if policy_paths:
        from airgate.policy.loader import load_policy_set

        try:
            catalog = load_policy_set(list(policy_paths)).catalog
        except PolicyLoadErrors as exc:
            click.echo(render_text(exc.findings), err=True, nl=False)
            click.get_current_context().exit(EXIT_FAILED)
    if fmt == "json":
        click.echo(json.dumps([spec.as_dict() for spec in catalog], indent=2))
    else:
        click.echo(render_table(catalog), nl=False)
