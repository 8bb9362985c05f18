"""``airgate test``: run policy test suites; report failures and rule coverage."""

from __future__ import annotations

import os

import click

from airgate.checks.results import coverage_ok, render_json, render_junit, render_text
from airgate.checks.runner import ENGINES, default_engines, load_suites, run_suites
from airgate.errors import EXIT_FAILED, EXIT_OK, AirgateError, PolicyLoadErrors

DEFAULT_DIR = os.path.join("policies", "tests")


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--format", "fmt", type=click.Choice(("text", "json", "junit")), default="text",
    show_default=True, help="text for people; json or junit (JUnit XML) for CI.",
)
@click.option(
    "--engine", type=click.Choice((*ENGINES, "both")), default=None,
    help="Engine(s) to run every case on. Default: both where durable-rules imports, "
    "else indexed. With both, any difference between their decisions fails the case.",
)
@click.option(
    "--min-coverage", type=click.FloatRange(0, 100), default=None, metavar="PCT",
    help="Fail when fewer than PCT % of the rules of the tested policy sets are exercised.",
)
@click.option("-v", "--verbose", is_flag=True, help="List passing cases too (text format).")
def command(
    paths: tuple[str, ...], fmt: str, engine: str | None, min_coverage: float | None,
    verbose: bool,
) -> None:
    """Run policy test suites (kind: PolicyTest) found under PATHS.

    A directory is searched recursively for *.yaml and *.yml files whose kind is
    PolicyTest; a file named explicitly must be one. Without PATHS: policies/tests
    if it exists, else the current directory. Exit 0 when every case passes (and
    coverage reaches --min-coverage), 1 when a case fails, coverage is short, no
    case was found or a suite is invalid, 2 for usage errors.
    """
    if not paths:
        paths = (DEFAULT_DIR,) if os.path.isdir(DEFAULT_DIR) else (".",)
    if engine is None:
        engines = default_engines()
    elif engine == "both":
        engines = ENGINES
    else:
        engines = (engine,)
    try:
        suites = load_suites(list(paths))
        if not any(s.cases for s in suites):
            raise AirgateError(
                "no test cases found in " + ", ".join(paths)
                + " (suites are YAML files with kind: PolicyTest)",
                code="no-tests",
            )
        run = run_suites(suites, engines=engines)
    except PolicyLoadErrors as exc:
        for finding in exc.findings:
            click.echo(f"airgate: {finding}", err=True)
        raise click.exceptions.Exit(EXIT_FAILED) from None
    if fmt == "json":
        click.echo(render_json(run, min_coverage=min_coverage), nl=False)
    elif fmt == "junit":
        click.echo(render_junit(run), nl=False)
    else:
        click.echo(render_text(run, verbose=verbose), nl=False)
    failed = not run.passed
    if not coverage_ok(run, min_coverage):
        click.echo(
            f"airgate: rule coverage {run.coverage.percent:.1f}% is below"
            f" --min-coverage {min_coverage:g}%", err=True,
        )
        failed = True
    click.get_current_context().exit(EXIT_FAILED if failed else EXIT_OK)
