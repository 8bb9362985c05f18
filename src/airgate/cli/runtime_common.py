"""Options and output shared by the queue and ledger commands."""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from airgate.errors import UsageError
from airgate.render import escape

if TYPE_CHECKING:
    from airgate.runtime.config import Config
    from airgate.runtime.queue import Queue
    from airgate.runtime.records import ActionRecord
    from airgate.runtime.store import Store

F = TypeVar("F", bound=Callable[..., Any])
ENV_ACTOR = "AIRGATE_ACTOR"

# Every integer the command line takes, bounded here: ids and counts live in INTEGER
# columns (32 bits on PostgreSQL), and a bigger number is a typo, not a request, that
# must be a usage error rather than an OverflowError deep in the driver.
# (AIRGATE_DB_TIMEOUT, the one number read from the environment, is bounded by the store.)
MAX_INT = 2**31 - 1
ACTION_ID = click.IntRange(1, MAX_INT)
ROW_LIMIT = click.IntRange(0, MAX_INT - 1)  # one row more is read, to tell that more exist
JOBS = click.IntRange(0, 256)  # worker processes: far more than any machine's CPUs
_VERBOSE = "airgate.verbose"
# What makes a spreadsheet read a cell as a formula (OWASP CSV injection), the fullwidth
# forms included, which spreadsheets fold to ASCII.
_FORMULA_START = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _remember_verbose(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[_VERBOSE] = True


def db_options(func: F) -> F:
    func = click.option(
        "--verbose", is_flag=True, expose_value=False, callback=_remember_verbose,
        help="Say on stderr which store the command uses and what chose it.")(func)
    func = click.option(
        "--config", "config_path", metavar="PATH",
        help="Runtime config (users and roles, executors); default AIRGATE_CONFIG,"
             " else ./airgate.yaml if present.")(func)
    func = click.option(
        "--db", metavar="PATH|URL",
        help="SQLite file or database URL; default AIRGATE_DB, else the config's store,"
             " else ./airgate.db.")(func)
    return func


def actor_option(func: F) -> F:
    return click.option(
        "--actor", metavar="NAME",
        help="Who is acting; default AIRGATE_ACTOR, else the OS user.")(func)


def resolve_actor(actor: str | None) -> str:
    if actor:
        return actor
    env = os.environ.get(ENV_ACTOR, "").strip()
    if env:
        return env
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        raise UsageError("cannot tell who you are: pass --actor or set AIRGATE_ACTOR") from None


def store_target(db: str | None, config: Config) -> tuple[str | None, str]:
    """The store to open and what chose it (for messages): --db, AIRGATE_DB, config, default."""
    from airgate.runtime.store import DEFAULT_DB, ENV_DB

    if db:
        return db, "--db"
    env = os.environ.get(ENV_DB, "")
    if env:
        return env, ENV_DB
    if config.store:
        return config.store, f"store: in {config.file}"
    return None, f"the default ./{DEFAULT_DB}"


def open_store(db: str | None, config: Config, *, create: bool = False) -> Store:
    """The chosen store, closed when the command ends (outside a command: by the caller).

    Only commands that record new input create a store (``create``); the others
    report where they looked and create nothing.
    """
    from airgate.render import escape
    from airgate.runtime.store import Store, StoreNotFound

    target, chosen_by = store_target(db, config)
    ctx = click.get_current_context(silent=True)
    try:
        store = Store(target, create=create)
    except StoreNotFound as exc:
        raise StoreNotFound(
            f"{exc.message} (store chosen by {chosen_by}; name another with --db or"
            f" AIRGATE_DB; `airgate submit` creates one)") from None
    if ctx is not None:
        ctx.call_on_close(store.close)
        if ctx.meta.get(_VERBOSE):
            click.echo(f"airgate: store: {escape(store.display_url)} (chosen by"
                       f" {escape(chosen_by)})", err=True)
    return store


def open_queue(db: str | None, config_path: str | None, *, maintain: bool = True,
               create: bool = False) -> Queue:
    """The queue over the chosen store, its lazy expiries and reverts already done."""
    from airgate.runtime.clock import clock_from_env
    from airgate.runtime.config import load_config
    from airgate.runtime.queue import Queue

    config = load_config(config_path)
    clock = clock_from_env()  # a bad AIRGATE_NOW is a usage error before any store is opened
    queue = Queue(open_store(db, config, create=create), config=config, clock=clock)
    if maintain:
        queue.maintain()
    return queue


def parse_since(text: str | None, now: dt.datetime) -> str | None:
    """``--since``: an ISO 8601 time, or a duration back from now (``24h``, ``7d``)."""
    from airgate.policy.durations import parse_duration
    from airgate.runtime.clock import format_time, parse_time

    if text is None:
        return None
    try:
        return format_time(now - dt.timedelta(seconds=parse_duration(text)))
    except ValueError:
        return format_time(parse_time(text))


def csv_cell(value: object) -> str:
    """A cell safe for a terminal and a spreadsheet: control characters escaped as in
    tables, and a ' before a cell a spreadsheet would run as a formula: one starting
    with =, +, -, @ (or their fullwidth forms), also after leading spaces, or with a tab
    or CR."""
    text = "" if value is None else value if isinstance(value, str) else str(value)
    formula = text.startswith(("\t", "\r")) or text.lstrip().startswith(_FORMULA_START)
    text = escape(text)
    return "'" + text if formula else text


def write_csv(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow([csv_cell(c) for c in row])


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def short_time(stored: str | None) -> str:
    """``2024-05-01T12:00:00.000000Z`` -> ``2024-05-01 12:00:00Z`` for tables."""
    if not stored:
        return ""
    return stored[:10] + " " + stored[11:19] + "Z"


ACTION_HEADERS = ("id", "status", "investigation", "action", "entity type", "entity", "source",
                  "created", "note")


def action_note(a: ActionRecord) -> str:
    if a.status == "pending":
        parts = [f"expires {short_time(a.expires_at)}"]
        quorum = a.approval.get("quorum", 1)
        if quorum and int(quorum) > 1:
            parts.append(f"quorum {quorum}")
        if a.reason:
            parts.append(a.reason)
        return "; ".join(parts)
    if a.status == "completed" and a.revert_at:
        return f"reverts {short_time(a.revert_at)}"
    if a.status == "deduplicated" and a.link_id:
        return f"duplicate of {a.link_id}"
    if a.status == "superseded" and a.superseded_by:
        return f"superseded by {a.superseded_by}"
    if a.link_id and a.status == "pending":
        return f"changed from {a.link_id}"
    return a.reason or a.error or ""


def action_row(a: ActionRecord) -> tuple[object, ...]:
    return (a.id, a.status, a.investigation, a.action_type, a.entity_type, a.entity_name,
            a.source, short_time(a.created_at), action_note(a))


HISTORY_HEADERS = ("id", "status", "investigation", "action", "entity type", "entity", "source",
                   "decided by", "updated", "note")


def history_row(a: ActionRecord) -> tuple[object, ...]:
    return (a.id, a.status, a.investigation, a.action_type, a.entity_type, a.entity_name,
            a.source, a.decided_by or "", short_time(a.updated_at), action_note(a))


def emit_actions(actions: Sequence[ActionRecord], fmt: str, *, history: bool = False,
                 undone_by: Mapping[int, str] | None = None) -> None:
    """``undone_by`` (history): who undid each undone action, shown in the note, as a last
    CSV column and as a JSON key."""
    from airgate.render import table

    headers = HISTORY_HEADERS if history else ACTION_HEADERS
    to_row = history_row if history else action_row
    if undone_by is not None:
        who = undone_by

        def to_row(a: ActionRecord) -> tuple[object, ...]:
            row = history_row(a)
            if a.id in who and fmt != "csv":
                note = "; ".join(str(x) for x in (f"undone by {who[a.id]}", row[-1]) if x)
                row = (*row[:-1], note)
            return (*row, who.get(a.id, "")) if fmt == "csv" else row

        if fmt == "csv":
            headers = (*headers, "undone by")
    if fmt == "json":
        echo_json([{**a.as_dict(), **({"undone_by": undone_by.get(a.id)}
                                      if undone_by is not None else {})} for a in actions])
    elif fmt == "csv":
        write_csv(headers, (to_row(a) for a in actions))
    elif actions:
        click.echo(table(headers, [to_row(a) for a in actions]))
    else:
        click.echo("no actions")
