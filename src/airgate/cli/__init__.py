"""airgate's command line: a thin layer that parses, calls the library and renders.

Each command lives in its own module, imported only when that command runs, so
that ``airgate validate`` does not pay for the store or the engine.

May use: every stage below (runtime, checks, engine, evidence, policy) and
click. Nothing in the library imports this package.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from airgate.errors import EXIT_FAILED, AirgateError
from airgate.render import escape

# command name -> module under airgate.cli (each exposes ``command``)
COMMANDS: dict[str, str] = {
    "validate": "validate",
    "schema": "schema",
    "actions-catalog": "catalog",
    "evaluate": "evaluate",
    "test": "policytest",
    "diff": "diff",
    "submit": "queue",
    "actions": "queue",
    "show": "queue",
    "approve": "queue",
    "reject": "queue",
    "history": "queue",
    "undo": "queue",
    "redo": "queue",
    "investigations": "queue",
    "expire": "queue",
    "tick": "queue",
    "ledger": "ledger",
    "init": "init",
    "config": "config",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMANDS.get(cmd_name)
        if module_name is None:
            return None
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(__name__):
                return None  # not built yet
            raise
        commands: dict[str, click.Command] = getattr(module, "COMMANDS", {})
        return commands.get(cmd_name) or getattr(module, "command", None)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AirgateError as exc:
            # Messages may quote evidence (an unknown key, its JSON path): attacker text.
            click.echo(f"airgate: error: {escape(str(exc))}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("airgate: interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            # stdout closed early (``airgate actions | head``): not an error of ours.
            sys.stderr.close()
            ctx.exit(EXIT_FAILED)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="airgate", prog_name="airgate")
def main() -> None:
    """airgate: policies decide remediation actions; a queue holds them for approval;
    a ledger keeps their history and undo."""
