"""airgate's command line: a thin layer that parses, calls the library and renders.

Each command lives in its own module, imported only when that command runs, so
that ``airgate validate`` does not pay for the store or the engine.

May use: every stage below (runtime, checks, engine, evidence, policy) and
click. Nothing in the library imports this package.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, NoReturn

import click

from airgate.errors import EXIT_FAILED, EXIT_USAGE, AirgateError
from airgate.render import escape

# command name -> module under airgate.cli (each exposes ``command``)
COMMANDS: dict[str, str] = {
    "validate": "validate",
    "schema": "schema",
    "actions-catalog": "catalog",
    "evaluate": "evaluate",
    "test": "policytest",
    "diff": "diff",
    "submit": "submit",
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
    "status": "status",
    "init": "init",
    "config": "config",
    "executors": "executors",
    "worker": "worker",
    "token": "token",
    "serve": "serve",
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

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:  # an unknown command or option of airgate itself
            _usage(exc)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            _usage(exc)
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


def _usage(exc: click.UsageError) -> NoReturn:
    """Click's usage errors in airgate's one style: ``airgate: error: ...``, exit 2."""
    no_args = getattr(click.exceptions, "NoArgsIsHelpError", None)
    if no_args is not None and isinstance(exc, no_args):
        exc.show()  # a group called bare shows its help: not an error message
        sys.exit(exc.exit_code)
    hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    click.echo(f"airgate: error: {escape(exc.format_message().rstrip('.'))}{hint}", err=True)
    sys.exit(EXIT_USAGE)


@click.group("airgate", cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="airgate", prog_name="airgate")
def main() -> None:
    """airgate: policies decide remediation actions; a queue holds them for approval;
    a ledger keeps their history and undo."""
