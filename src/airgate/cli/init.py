"""``airgate init [--demo]``: create the store; a demo store may run on a pinned clock."""

from __future__ import annotations

import click

from airgate.cli.runtime_common import actor_option, db_options, open_store, resolve_actor


@click.command("init")
@click.option("--demo", is_flag=True,
              help="Make the new store a demo store: AIRGATE_NOW may then pin its clock.")
@actor_option
@db_options
def command(demo: bool, actor: str | None, db: str | None, config_path: str | None) -> None:
    """Create (or migrate) the store; with --demo, mark a new, empty one as a demo store.

    A pinned clock (AIRGATE_NOW) is refused on every other store, so a live
    store's actions can never be expired, reverted or approved by moving time.
    """
    from airgate.runtime.clock import format_time, pinned_time
    from airgate.runtime.config import load_config
    from airgate.runtime.governance import init_demo, read_settings

    config = load_config(config_path)
    pinned = pinned_time()
    store = open_store(db, config, create=True)
    if not demo:
        kind = "a demo store" if read_settings(store).demo else "a store"
        click.echo(f"{kind} at schema version {store.schema_version()}")
        return
    who = resolve_actor(actor)
    at = format_time(pinned) if pinned is not None else None
    if at is None:
        import datetime as dt

        at = format_time(dt.datetime.now(dt.UTC))
    made = init_demo(store, actor=who, at=at)
    click.echo("a new demo store: AIRGATE_NOW may pin its clock" if made
               else "already a demo store")
