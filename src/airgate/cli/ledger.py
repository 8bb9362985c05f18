"""``airgate ledger verify`` and ``airgate ledger export``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from airgate.cli.runtime_common import db_options, open_store, write_csv
from airgate.errors import EXIT_FAILED

if TYPE_CHECKING:
    from airgate.runtime.store import Store

EXPORT_HEADERS = ("seq", "at", "event", "actor", "action_id", "state_before", "state_after",
                  "comment", "details", "prev_hash", "hash")


@click.group("ledger")
def command() -> None:
    """The hash-chained ledger of every event."""


def _store(db: str | None, config_path: str | None) -> Store:
    from airgate.runtime.config import load_config

    return open_store(db, load_config(config_path))


@command.command("verify")
@db_options
def verify(db: str | None, config_path: str | None) -> None:
    """Check the whole chain; name the first entry changed, deleted or reordered (exit 1)."""
    from airgate.runtime.ledger import verify_rows

    store = _store(db, config_path)
    with store.read() as tx:
        result = verify_rows(tx.iter_ledger_rows(), head=tx.ledger_head())
    if result.ok:
        click.echo(f"ledger ok: {result.count} entries verified")
        return
    click.echo(f"airgate: error: ledger broken at entry {result.bad_seq}: {result.message}"
               f" ({result.count} entries before it verified)", err=True)
    sys.exit(EXIT_FAILED)


@command.command("export")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json",
              show_default=True)
@db_options
def export(fmt: str, db: str | None, config_path: str | None) -> None:
    """Every ledger entry in order, as JSON lines' worth of a list, or CSV with a header."""
    store = _store(db, config_path)
    with store.read() as tx:
        entries = tx.iter_ledger()
        if fmt == "csv":
            write_csv(EXPORT_HEADERS, (
                [e.seq, e.at, e.event, e.actor, e.action_id, e.state_before, e.state_after,
                 e.comment, json.dumps(dict(e.details), sort_keys=True, ensure_ascii=False),
                 e.prev_hash, e.hash] for e in entries))
            return
        # Streamed as one JSON array, so a long ledger never sits in memory at once.
        out = sys.stdout
        out.write("[")
        for n, e in enumerate(entries):
            out.write(("," if n else "") + "\n  " + json.dumps(e.as_dict(), ensure_ascii=False))
        out.write("\n]\n")
