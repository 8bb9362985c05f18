"""``airgate worker``: claim runnable work from the store and carry it out."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

import click

from airgate.cli.runtime_common import db_options, open_queue
from airgate.render import escape

HELP = """Carry out the queue's work: approved actions, undo requests, due timed reverts,
pending actions past their expiry, and runs a dead process left behind.

\b
With `execution: worker` in the config pushed into the store, approve and undo
only record the decision; workers run it. Start several workers, on as many
machines, against one PostgreSQL store: each unit is claimed once (a row lock
and a lease with a deadline); a worker that dies leaves its lease to run out
and another finishes its unit under the same idempotency key. On SQLite one
worker serves one machine.

\b
Each unit is one log line on stderr (--log-format json: JSON lines) with the
worker id, action id and type, unit kind, outcome and duration; the ledger
entries a worker writes carry its id as `worker`.

\b
SIGTERM or SIGINT: finish the unit at hand, exit 0. A second signal exits at
once; the lease it held runs out and another worker takes the unit over.
--once: do what is due now and exit (cron, tests).

\b
Deployment (a systemd unit, docs/runtime.md):
  [Service]
  ExecStart=/opt/airgate/bin/airgate worker --db postgresql+psycopg://airgate@db/airgate
  Restart=always
  KillSignal=SIGTERM
"""

_EXIT_SIGNAL = 128


@click.command("worker", help=HELP)
@click.option("--concurrency", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Units carried out at once (threads; the connection pool is sized to it).")
@click.option("--once", is_flag=True, help="Do what is due now, then exit.")
@click.option("--poll-interval", type=click.FloatRange(0.1, 3600), default=5.0,
              show_default=True, metavar="SECONDS",
              help="Longest wait between two looks for work when no notification arrives.")
@click.option("--lease", "lease_seconds", type=click.FloatRange(3, 3600), default=30.0,
              show_default=True, metavar="SECONDS",
              help="How long a claim holds without a heartbeat before another worker may"
                   " take it over.")
@click.option("--worker-id", metavar="ID",
              help="This worker's name in logs and the ledger; default host:pid:random.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="One line per unit and per fault, on stderr.")
@db_options
def command(concurrency: int, once: bool, poll_interval: float, lease_seconds: float,
            worker_id: str | None, log_format: str, db: str | None,
            config_path: str | None) -> None:
    from airgate.runtime.worker import Worker

    if worker_id is not None and not worker_id.strip():
        raise click.UsageError("--worker-id is empty")
    queue = open_queue(db, config_path, maintain=False, pool_size=concurrency + 2)
    log = make_log(log_format)
    worker = Worker(queue.store, config=queue.config, clock=queue.clock,
                    worker_id=worker_id, concurrency=concurrency, poll_interval=poll_interval,
                    lease_seconds=lease_seconds, log=log)
    if once:
        report = worker.run_once().as_dict()
        if log_format == "json":
            click.echo(json.dumps(report, ensure_ascii=True, sort_keys=True))
        else:
            counts = ", ".join(f"{kind} {len(report[kind])}" for kind in
                               ("execute", "undo", "revert", "expire", "reconcile"))
            click.echo(f"worker {escape(worker.id)}: {counts}; {report['retried']} database"
                       f" faults retried, {report['errors']} gave up")
        if report["errors"]:
            sys.exit(1)
        return
    _serve(worker.run, lambda record: log({"worker": worker.id, **record}))


def _serve(run: Callable[[threading.Event], None], log: Callable[[Mapping[str, Any]], None]
           ) -> None:
    """Run the loop in a thread; the main thread takes the signals (it must, in Python)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            log({"event": "exit_now", "signal": signal.Signals(signum).name})
            sys.stderr.flush()
            os._exit(_EXIT_SIGNAL + signum)  # the lease it held runs out for another worker
        stop.set()
        log({"event": "stopping", "signal": signal.Signals(signum).name,
             "note": "finishing the unit at hand; a second signal exits at once"})

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    failure: list[BaseException] = []

    def body() -> None:
        try:
            run(stop)
        except BaseException as exc:  # reported by the main thread, in airgate's words
            failure.append(exc)
            stop.set()

    thread = threading.Thread(target=body, name="airgate-worker")
    thread.start()
    while thread.is_alive():
        thread.join(0.2)
    if failure:
        raise failure[0]


def make_log(fmt: str) -> Callable[[Mapping[str, Any]], None]:
    """A sink writing one line per record to stderr: ``key=value`` text (escaped: action
    types and errors are shown, never evidence) or a JSON object."""
    lock = threading.Lock()

    def log(record: Mapping[str, Any]) -> None:
        at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if fmt == "json":
            line = json.dumps({"at": at, **record}, ensure_ascii=True, default=str)
        else:
            parts = [f"{k}={_text(v)}" for k, v in record.items() if k != "worker"]
            line = f"{at} airgate worker {_text(record.get('worker', ''))}: {' '.join(parts)}"
        with lock:
            click.echo(line, err=True)

    return log


def _text(value: object) -> str:
    text = escape(str(value))
    return json.dumps(text) if (" " in text or not text) else text


COMMANDS = {"worker": command}
