"""``airgate token create|list|revoke``: API tokens for ``airgate serve``.

Whoever can open the store directly may manage its tokens (docs/server.md): the
token is printed once, the store keeps only its hash, and the ledger records who
created or revoked which token (by id and prefix, never the token).
"""

from __future__ import annotations

import datetime as dt

import click

from airgate.cli.runtime_common import (
    MAX_INT,
    acting,
    actor_option,
    db_options,
    echo_json,
    open_store,
)
from airgate.errors import UsageError
from airgate.runtime.export import short_time


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@click.group("token")
def command() -> None:
    """API tokens: who a request to airgate serve acts as."""


@command.command("create")
@click.option("--actor", "for_actor", required=True, metavar="NAME",
              help="Who requests with this token act as (roles come from the config).")
@click.option("--expires", metavar="DURATION", default="90d", show_default=True,
              help="How long the token works (90d, 12h...); 'never' for no expiry.")
@click.option("--by", "by", metavar="NAME",
              help="Who creates it, for the ledger; default AIRGATE_ACTOR, else the OS user.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@db_options
def create(for_actor: str, expires: str, by: str | None, fmt: str, db: str | None,
           config_path: str | None) -> None:
    """Create a token and print it once: the store keeps only its hash."""
    from airgate.policy.durations import parse_duration
    from airgate.runtime import tokens
    from airgate.runtime.config import load_config

    seconds: int | None = None
    if expires.strip().lower() != "never":
        try:
            seconds = parse_duration(expires)
        except ValueError as exc:
            raise UsageError(f"--expires: {exc}") from None
    store = open_store(db, load_config(config_path), create=True)
    raw, row = tokens.create(store, actor=for_actor, by=acting(store, by), now=_now(),
                             expires_in=seconds)
    if fmt == "json":
        echo_json({"token": raw, **row.as_dict()})
        return
    click.echo(raw)
    click.echo(f"airgate: token {row.id} ({row.prefix}…) acts as {row.actor}; expires"
               f" {short_time(row.expires_at) or 'never'}. It is shown only now: keep it"
               " in a secret store.", err=True)


@command.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@db_options
def list_(fmt: str, db: str | None, config_path: str | None) -> None:
    """Every token: id, prefix, actor, expiry, revocation, last use (never the token)."""
    from airgate.render import table
    from airgate.runtime import tokens
    from airgate.runtime.clock import format_time
    from airgate.runtime.config import load_config

    rows = tokens.list_tokens(open_store(db, load_config(config_path)))
    if fmt == "json":
        echo_json([r.as_dict() for r in rows])
    elif rows:
        now = format_time(_now())
        click.echo(table(("id", "prefix", "actor", "state", "created", "created by", "expires",
                          "last used"), [
            (r.id, r.prefix, r.actor,
             "revoked" if r.revoked_at else "expired" if r.expires_at and r.expires_at <= now
             else "active", short_time(r.created_at), r.created_by,
             short_time(r.expires_at) or "never", short_time(r.last_used_at)) for r in rows]))
    else:
        click.echo("no tokens")


@command.command("revoke")
@click.argument("token_id", type=click.IntRange(1, MAX_INT))
@actor_option
@db_options
def revoke(token_id: int, actor: str | None, db: str | None, config_path: str | None) -> None:
    """Revoke token TOKEN_ID: requests with it are refused from now on."""
    from airgate.runtime import tokens
    from airgate.runtime.config import load_config

    store = open_store(db, load_config(config_path))
    row = tokens.revoke(store, token_id, by=acting(store, actor), now=_now())
    click.echo(f"token {row.id} ({row.prefix}…) of {row.actor} revoked at"
               f" {short_time(row.revoked_at)}")
