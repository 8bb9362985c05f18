"""``airgate schema NAME``: print one of the JSON Schemas shipped in the package."""

from __future__ import annotations

from importlib import resources

import click

from airgate.errors import AirgateError

NAMES = ("policy", "evidence", "decision", "policy-test", "config")


@click.command()
@click.argument("name", metavar="NAME")
def command(name: str) -> None:
    """Print the JSON Schema NAME: policy, evidence, decision, policy-test or config.

    Point an editor at it (``# yaml-language-server: $schema=...``) to complete
    and check files as you type.
    """
    if name not in NAMES:
        raise click.UsageError(f"unknown schema {name!r}; choose one of: {', '.join(NAMES)}")
    resource = resources.files("airgate").joinpath(f"schemas/{name}.schema.json")
    if not resource.is_file():
        raise AirgateError(f"schema {name!r} is not shipped with this build of airgate")
    click.echo(resource.read_text("utf-8"), nl=False)
