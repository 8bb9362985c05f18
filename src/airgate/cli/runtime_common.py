"""Options and output shared by the queue and ledger commands."""

from __future__ import annotations

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
from airgate.runtime.export import ACTION_HEADERS, HISTORY_HEADERS, action_row, history_row

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
    """``--actor``, else ``AIRGATE_ACTOR``, else the OS user; ``--actor ""`` is a usage error
    (it must never quietly become someone else)."""
    if actor is not None:
        if not actor.strip():
            raise UsageError("--actor is empty: name who is acting")
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


def open_store(db: str | None, config: Config, *, create: bool = False,
               pool_size: int | None = None) -> Store:
    """The chosen store, closed when the command ends (outside a command: by the caller).

    Only commands that record new input create a store (``create``); the others
    report where they looked and create nothing.
    """
    from airgate.runtime.store import Store, StoreNotFound

    target, chosen_by = store_target(db, config)
    ctx = click.get_current_context(silent=True)
    try:
        store = Store(target, create=create, pool_size=pool_size)
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


def acting(on: Queue | Store, actor: str | None) -> str:
    """Who acts: ``--actor``, ``AIRGATE_ACTOR`` or the OS user on SQLite; on PostgreSQL
    the authenticated database user (or the actor the stored config's ``database_users``
    maps it to), and an ``--actor`` naming someone else is a usage error."""
    from airgate.runtime.config import Config, normalize_actor
    from airgate.runtime.governance import read_settings
    from airgate.runtime.queue import Queue

    store = on.store if isinstance(on, Queue) else on
    db_user = store.database_user()
    if db_user is None:
        return resolve_actor(actor)
    config = on.config if isinstance(on, Queue) else read_settings(store).apply(Config())
    who = config.actor_of_database_user(db_user)
    given = actor if actor is not None else os.environ.get(ENV_ACTOR, "").strip() or None
    if given is not None and normalize_actor(resolve_actor(given)) != normalize_actor(who):
        raise UsageError(f"on PostgreSQL the actor is the database user {db_user!r}"
                         + (f" (acting as {who!r})" if who != db_user else "")
                         + f", not {given!r}: connect as that user instead")
    return who


def open_queue(db: str | None, config_path: str | None, *, maintain: bool = True,
               create: bool = False, pool_size: int | None = None) -> Queue:
    """The queue over the chosen store, governed by the config stored in it when a global
    admin pushed one (else by the local file), its lazy expiries and reverts done first
    when ``maintain`` (writers only: a reader never changes the store).

    ``AIRGATE_NOW`` is refused (usage error) unless the store is a demo store: a pinned
    clock must never expire, revert, approve or reconcile anything in a live store.
    """
    from airgate.runtime.clock import ENV_NOW, FixedClock, SystemClock, pinned_time
    from airgate.runtime.config import load_config
    from airgate.runtime.governance import governed_config, read_settings
    from airgate.runtime.queue import Queue

    local = load_config(config_path)
    pinned = pinned_time()  # a malformed or out-of-range time fails before the store opens
    store = open_store(db, local, create=create, pool_size=pool_size)
    settings = read_settings(store)
    if pinned is not None and not settings.demo:
        raise UsageError(f"{ENV_NOW} pins the clock only on a demo store (airgate init --demo);"
                         " this store is not one: unset it")
    config, warning = governed_config(store, local, settings)
    if warning:
        click.echo(f"airgate: warning: {warning}", err=True)
    queue = Queue(store, config=config,
                  clock=SystemClock() if pinned is None else FixedClock(pinned))
    if maintain:
        queue.maintain()
    return queue


def parse_since(text: str | None, now: dt.datetime) -> str | None:
    """``--since``: an ISO 8601 time, or a duration back from now (``24h``, ``7d``)."""
    from airgate.policy.durations import parse_duration
    from airgate.runtime.clock import EARLIEST, format_time, parse_time

    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError:
        if text.strip()[:-1].isdigit() and text.strip()[-1:] in "smhdw":
            # A span, only too long to be one: say so rather than "malformed time".
            raise UsageError(f"--since {text} reaches back before {EARLIEST:%Y-%m-%d}: name"
                             " a shorter span or a time") from None
        return format_time(parse_time(text))
    if seconds > (now - EARLIEST).total_seconds():
        raise UsageError(f"--since {text} reaches back before {EARLIEST:%Y-%m-%d}: name a"
                         " shorter span or a time")
    return format_time(now - dt.timedelta(seconds=seconds))


def write_csv(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    from airgate.runtime.export import csv_text

    sys.stdout.write(csv_text(headers, rows))


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def emit_actions(actions: Sequence[ActionRecord], fmt: str, *, history: bool = False,
                 undone_by: Mapping[int, str] | None = None, now: str | None = None) -> None:
    """Print actions. ``undone_by`` (history): who undid each undone action, shown in the
    note, as a last CSV column and as a JSON key; ``now`` (stored spelling) lets notes mark
    pending actions past expiry."""
    from airgate.render import table

    headers = HISTORY_HEADERS if history else ACTION_HEADERS
    base = history_row if history else action_row

    def to_row(a: ActionRecord) -> tuple[object, ...]:
        return base(a, now)

    if undone_by is not None:
        who = undone_by

        def to_row(a: ActionRecord) -> tuple[object, ...]:
            row = history_row(a, now)
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
