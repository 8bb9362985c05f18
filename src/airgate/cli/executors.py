"""``airgate executors check``: which executor runs each action type of the catalog, and
whether its secrets are there (environment variables set, files readable: an environment
variable's name is an identifier, a file's path is not). Calls nothing, changes nothing."""

from __future__ import annotations

import click

from airgate.cli.runtime_common import db_options, echo_json
from airgate.errors import EXIT_FAILED
from airgate.runtime.export import short_time


@click.group("executors")
def command() -> None:
    """The executors that carry out approved actions."""


@command.command("check")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@db_options
def check(fmt: str, db: str | None, config_path: str | None) -> None:
    """For every action type in the catalog: the executor the governing config gives it
    (the config pushed to the store, else the local file) and whether the environment
    variables or files holding its secrets are there (no secret is read). Exit 1 when
    one is missing."""
    from airgate.catalog import DEFAULT_CATALOG
    from airgate.cli.runtime_common import open_queue
    from airgate.render import escape
    from airgate.runtime.config import load_config
    from airgate.runtime.executors.inventory import check as check_executors
    from airgate.runtime.governance import read_settings
    from airgate.runtime.store import StoreNotFound

    try:
        queue = open_queue(db, config_path, maintain=False)
    except StoreNotFound:
        config = load_config(config_path)
        source = f"{config.file} (no store yet)" if config.file else "no config: all recorded"
    else:
        config = queue.config
        settings = read_settings(queue.store)
        if settings.config is not None:
            source = (f"the config pushed to the store by {settings.config_by} at"
                      f" {short_time(settings.config_at)}")
        elif config.file and config.executors:
            source = str(config.file)
        else:
            source = "no executors configured: all recorded"
    checks = check_executors(config, [spec.id for spec in DEFAULT_CATALOG])
    ok = all(c.ok for c in checks)
    if fmt == "json":
        echo_json({"source": source, "ok": ok, "executors": [c.as_dict() for c in checks]})
    else:
        click.echo(escape(f"executors from: {source}"))
        width = max(len(c.action_type) for c in checks)
        for c in checks:
            state = ("ok" if not c.secrets else "ok: " + ", ".join(
                f"{where} {'set' if where.isidentifier() else 'readable'}"
                for where in c.secrets)) if c.ok else "MISSING: " + "; ".join(c.problems)
            if c.warnings:
                state += "; warning: " + "; ".join(c.warnings)
            click.echo(escape(f"{c.action_type:<{width}}  {c.executor:<17}  {state}"
                              f"  -> {c.target}"))
    if not ok:
        click.get_current_context().exit(EXIT_FAILED)
