"""``airgate config push FILE`` and ``airgate config show``: the config that governs a store."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import click

from airgate.cli.runtime_common import acting, actor_option, db_options, echo_json, open_store

if TYPE_CHECKING:
    from airgate.runtime.config import Config
    from airgate.runtime.store import Store


@click.group("config")
def command() -> None:
    """The users, roles, automation identities and executors stored in the store."""


def _store(db: str | None, config: Config, *, create: bool = False) -> Store:
    # Closed when the command ends; only a push (which may bootstrap) creates a store.
    return open_store(db, config, create=create)


@command.command("push")
@click.argument("file")
@actor_option
@db_options
def push(file: str, actor: str | None, db: str | None, config_path: str | None) -> None:
    """Store FILE's users, automation and executors as the store's governing config.

    Only a global admin of the stored config may push (a ledger entry records each
    push); the first push on a store bootstraps it and must make its pusher a
    global admin. From then on every command takes roles and executors from the
    store, whatever config file its caller names.
    """
    from airgate.runtime.clock import format_time, pinned_time
    from airgate.runtime.config import load_config
    from airgate.runtime.governance import push_config, read_settings

    new = load_config(file)
    local = load_config(config_path)
    store = _store(db, local if local.store else dataclasses.replace(local, store=new.store),
                   create=True)
    pinned = pinned_time()
    if pinned is not None and not read_settings(store).demo:
        from airgate.errors import UsageError

        raise UsageError("AIRGATE_NOW pins the clock only on a demo store (airgate init"
                         " --demo); this store is not one: unset it")
    import datetime as dt

    at = format_time(pinned or dt.datetime.now(dt.UTC))
    digest = push_config(store, new.data, actor=acting(store, actor), at=at)
    click.echo(f"config pushed: {len(new.users)} users, {len(new.executors)} executors"
               f" (sha256 {digest[:16]})")


@command.command("show")
@db_options
def show(db: str | None, config_path: str | None) -> None:
    """Print the governing config stored in the store (JSON), or say there is none."""
    from airgate.runtime.config import load_config
    from airgate.runtime.governance import read_settings

    settings = read_settings(_store(db, load_config(config_path)))
    if settings.config is None:
        click.echo("no config stored: roles and executors come from the local config file")
        return
    echo_json({"pushed_by": settings.config_by, "pushed_at": settings.config_at,
               "demo": settings.demo, "config": settings.config})
