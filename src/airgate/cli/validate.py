"""``airgate validate``: check policy files against the schema and for meaning."""

from __future__ import annotations

import click

from airgate import __version__
from airgate.checks.report import (
    FORMATS,
    render_github,
    render_json,
    render_sarif,
    render_text,
    summary,
)
from airgate.checks.validate import CODES, validate
from airgate.errors import EXIT_FAILED, EXIT_OK


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
    help="text: FILE:LINE:COLUMN: severity: CODE: message; json: findings and a summary; "
    "github: workflow annotations; sarif: SARIF 2.1.0.",
)
@click.option("--strict", is_flag=True, help="Warnings fail too; run the extra static checks.")
def command(paths: tuple[str, ...], fmt: str, strict: bool) -> None:
    """Check policy files and directories (searched for *.yaml, *.yml).

    Reports every finding at its file, line and column. Findings go to stdout;
    with the text and github formats a one-line summary follows on stderr.
    Exit 0 when there is no error, 1 when there is one (or a warning under
    --strict), 2 for usage errors.
    """
    result = validate(list(paths), strict=strict)
    findings = list(result.findings)
    if fmt == "json":
        click.echo(render_json(findings, len(result.files)), nl=False)
    elif fmt == "sarif":
        click.echo(render_sarif(findings, CODES, __version__), nl=False)
    else:
        out = render_github(findings) if fmt == "github" else render_text(findings)
        click.echo(out, nl=False)
        click.echo(summary(findings, len(result.files)), err=True)
    click.get_current_context().exit(EXIT_FAILED if result.failed(strict=strict) else EXIT_OK)
