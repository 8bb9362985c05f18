"""``airgate status``: which store the commands use, and what is in it."""

from __future__ import annotations

import click

from airgate.cli.runtime_common import db_options, echo_json, open_store, store_target


@click.command("status")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@db_options
def command(fmt: str, db: str | None, config_path: str | None) -> None:
    """The store in use (password masked), its schema version, actions by status and the
    ledger head. Reads only: creates nothing, expires nothing."""
    from airgate.render import escape
    from airgate.runtime.config import load_config

    config = load_config(config_path)
    summary = open_store(db, config).summary()
    summary["chosen_by"] = store_target(db, config)[1]
    if fmt == "json":
        echo_json(summary)
        return
    counts = summary["by_status"]
    by_status = ", ".join(f"{name} {n}" for name, n in counts.items())
    ledger = summary["ledger"]
    click.echo("\n".join(escape(line) for line in (
        f"store: {summary['store']} ({summary['backend']}; chosen by {summary['chosen_by']})",
        f"schema version: {summary['schema_version']}",
        f"actions: {summary['actions']}" + (f" ({by_status})" if by_status else ""),
        f"ledger head: entry {ledger['seq']}, hash {ledger['hash']}",
    )))
