"""``airgate serve``: the HTTP API and web Action Center over one store (airgate[server])."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from airgate.cli.runtime_common import db_options
from airgate.errors import EXIT_FAILED, PolicyLoadErrors, UsageError
from airgate.render import escape


@click.command("serve")
@click.option("--policy", "policy_paths", multiple=True, required=True,
              help="Policy file or directory (repeatable): what submit and evaluate use.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; put a TLS proxy in front for anything but loopback.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--worker/--no-worker", default=True, show_default=True,
              help="Run a worker in this process (expiries, timed reverts, reconciliation;"
                   " with execution: worker, approved actions too); with --no-worker,"
                   " separate airgate worker processes do.")
@click.option("--tick-interval", type=click.FloatRange(0.1, 3600), default=5.0,
              show_default=True,
              help="Longest wait of the in-process worker between two looks for due work.")
@click.option("--max-body-mb", type=click.IntRange(1, 1024), default=16, show_default=True,
              help="Largest request body, in MiB (a JSON document is read up to 16 MiB"
                   " whatever this says; NDJSON up to this).")
@click.option("--engine", "engine_name", type=click.Choice(["indexed", "durable"]),
              default="indexed", show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes sharing the port (uvicorn's): requests are read and"
                   " evaluated in parallel, writes to the store still one at a time. More"
                   " than 1 needs --no-worker: run airgate worker beside them.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info",
                                                "debug"]), default="info", show_default=True)
@db_options
def command(policy_paths: tuple[str, ...], host: str, port: int, worker: bool,
            tick_interval: float, max_body_mb: int, engine_name: str, workers: int,
            log_level: str, db: str | None, config_path: str | None) -> None:
    """Serve the JSON API (/api/v1, OpenAPI at /api/v1/openapi.json) and the web pages.

    Every endpoint but /healthz needs a token from `airgate token create`.
    """
    if workers > 1 and worker:
        # Each process would run its own worker: on SQLite one worker serves one store.
        raise UsageError("--workers more than 1 needs --no-worker: run one airgate worker"
                         " beside the server processes (docs/server.md)")
    try:
        import uvicorn

        from airgate.server.app import ENV_SETTINGS, create_app, settings_env
        from airgate.server.context import ServerSettings
    except ModuleNotFoundError as exc:
        raise UsageError(f"airgate serve needs the server extra ({exc.name} is missing):"
                         " pip install 'airgate[server]'") from None
    settings = ServerSettings(db=db, policy_paths=policy_paths, config_path=config_path,
                              worker=worker, worker_interval=tick_interval,
                              engine=engine_name, max_body_bytes=max_body_mb * 1024 * 1024,
                              processes=workers)
    try:
        # Built here even for --workers: a bad policy or store fails now, once, and the
        # store's schema is brought up to date before any server process opens it.
        app = create_app(settings)
    except PolicyLoadErrors as exc:
        for finding in exc.findings:  # every finding, as airgate submit says them
            click.echo(f"airgate: error: {finding.location}: {finding.code}:"
                       f" {escape(finding.message)}", err=True)
        sys.exit(EXIT_FAILED)
    if host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(f"airgate: warning: listening on {escape(host)} without TLS: tokens and"
                   " session cookies cross the network in clear; put a TLS proxy in front"
                   " (docs/server.md)", err=True)
    store = app.state.airgate.store.display_url
    click.echo(f"airgate: serving {escape(store)} on http://{escape(host)}:{port} (OpenAPI at"
               " /api/v1/openapi.json)", err=True)
    options: dict[str, Any] = {"host": host, "port": port, "log_level": log_level,
                               "server_header": False, "proxy_headers": True,
                               "forwarded_allow_ips": "127.0.0.1"}
    if workers == 1:
        uvicorn.run(app, **options)
        return
    app.state.airgate.close()  # each process opens its own
    os.environ[ENV_SETTINGS] = settings_env(settings)
    uvicorn.run("airgate.server.app:app_from_env", factory=True, workers=workers, **options)
