"""``airgate ledger verify|export|checkpoint|keygen``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from airgate.cli.runtime_common import db_options, echo_json, open_store, parse_since, write_csv
from airgate.errors import EXIT_FAILED, UsageError

if TYPE_CHECKING:
    from airgate.runtime.store import Store

EXPORT_HEADERS = ("seq", "at", "event", "actor", "action_id", "state_before", "state_after",
                  "comment", "details", "prev_hash", "hash")


@click.group("ledger")
def command() -> None:
    """The hash-chained ledger of every event, and signed checkpoints of it."""


def _store(db: str | None, config_path: str | None) -> Store:
    from airgate.runtime.config import load_config

    return open_store(db, load_config(config_path))


@command.command("verify")
@click.option("--checkpoint", "checkpoints", multiple=True, metavar="FILE",
              help="A file of signed checkpoints (repeatable): the chain must pass through"
                   " each. Needs --public-key.")
@click.option("--public-key", metavar="PUBFILE", help="The public key the checkpoints are"
              " signed with (from airgate ledger keygen).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@db_options
def verify(checkpoints: tuple[str, ...], public_key: str | None, fmt: str, db: str | None,
           config_path: str | None) -> None:
    """Check the chain, its checkpoints, and the actions and approvals against the ledger.

    Exit 1 names the first entry changed, deleted or reordered, a checkpoint the
    ledger no longer holds, and every action whose stored state differs from its
    ledger."""
    from airgate.render import escape
    from airgate.runtime.checkpoint import load_checkpoints, load_public_key, verify_store

    if checkpoints and not public_key:
        raise UsageError("--checkpoint needs --public-key")
    if public_key and not checkpoints:
        raise UsageError("--public-key needs at least one --checkpoint")
    signed = load_checkpoints(checkpoints, load_public_key(public_key)) if public_key else []
    report = verify_store(_store(db, config_path), checkpoints=signed)
    if fmt == "json":
        echo_json(report.as_dict())
        if not report.ok:
            sys.exit(EXIT_FAILED)
        return
    result = report.chain
    if not result.ok:
        where = f" at entry {result.bad_seq}" if result.bad_seq is not None else ""
        click.echo(f"airgate: error: ledger broken{where}: {escape(result.message)}"
                   f" ({result.count} entries before it verified)", err=True)
    for action_id, problem in report.state:
        click.echo(f"airgate: error: action {action_id}: {escape(problem)}", err=True)
    for problem in report.settings:
        click.echo(f"airgate: error: store settings: {escape(problem)}", err=True)
    if not report.ok:
        sys.exit(EXIT_FAILED)
    note = ""
    if report.checkpoints:
        held = "1 checkpoint holds" if report.checkpoints == 1 else (
            f"{report.checkpoints} checkpoints hold")
        note = f"; {held}, the last at entry {report.last_checkpoint}"
    click.echo(f"ledger ok: {result.count} entries verified{note}")


@command.command("export")
@click.option("--format", "fmt", type=click.Choice(["json", "ndjson", "csv"]), default="json",
              show_default=True)
@click.option("--since", metavar="TIME|DURATION",
              help="Only entries at or after this time (ISO 8601, or back from now: 24h).")
@db_options
def export(fmt: str, since: str | None, db: str | None, config_path: str | None) -> None:
    """Every ledger entry in order: a JSON list, one JSON object per line, or CSV."""
    from airgate.runtime.clock import clock_from_env

    store = _store(db, config_path)
    start = parse_since(since, clock_from_env().now())
    with store.read() as tx:
        entries = tx.iter_ledger(since=start)
        if fmt == "csv":
            write_csv(EXPORT_HEADERS, (
                [e.seq, e.at, e.event, e.actor, e.action_id, e.state_before, e.state_after,
                 e.comment, json.dumps(dict(e.details), sort_keys=True, ensure_ascii=False),
                 e.prev_hash, e.hash] for e in entries))
            return
        out = sys.stdout
        if fmt == "ndjson":
            for e in entries:
                out.write(json.dumps(e.as_dict(), ensure_ascii=False) + "\n")
            return
        # Streamed as one JSON array, so a long ledger never sits in memory at once.
        out.write("[")
        for n, e in enumerate(entries):
            out.write(("," if n else "") + "\n  " + json.dumps(e.as_dict(), ensure_ascii=False))
        out.write("\n]\n")


@command.command("checkpoint")
@click.option("--key", "key_path", required=True, metavar="KEYFILE",
              help="The Ed25519 private key (airgate ledger keygen); keep it off the store's"
                   " machine or at least out of its writers' reach.")
@click.option("--out", metavar="FILE", help="Append the checkpoint to FILE (one JSON line"
              " each) after checking the ledger still holds those already in it; default"
              " stdout.")
@db_options
def checkpoint(key_path: str, out: str | None, db: str | None, config_path: str | None) -> None:
    """Sign the current head of the ledger (entry, hash, time, store identity)."""
    from pathlib import Path

    from airgate.runtime.checkpoint import (
        append_checkpoint,
        create_checkpoint,
        load_checkpoints,
        load_private_key,
        public_of,
    )

    key = load_private_key(key_path)
    earlier = load_checkpoints([out], public_of(key)) if out and Path(out).exists() else []
    signed = create_checkpoint(_store(db, config_path), key, earlier=earlier)
    if out:
        append_checkpoint(out, signed)
        click.echo(f"checkpoint of entry {signed.seq} appended to {out}", err=True)
    else:
        click.echo(signed.line())


@command.command("keygen")
@click.option("--out", required=True, metavar="KEYFILE",
              help="Where the private key goes (created with mode 0600; never overwritten).")
@click.option("--public-out", metavar="PUBFILE", help="Where the public key goes; default"
              " KEYFILE.pub.")
def keygen(out: str, public_out: str | None) -> None:
    """Make an Ed25519 key pair for signing checkpoints; print the public key."""
    from airgate.runtime.checkpoint import generate_key

    click.echo(generate_key(out, public_out), nl=False)
