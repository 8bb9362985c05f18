"""The time-driven work while the server runs, done by an in-process
:class:`~airgate.runtime.worker.Worker`: pending actions past their expiry, due timed
reverts, runs a dead process left behind, and (with ``execution: worker`` in the pushed
config) the approved actions and requested undos themselves.

It runs in threads of the server process unless ``--no-worker`` leaves it to separate
``airgate worker`` processes. The worker governs itself by the config pushed into the
store, as the requests do, and outlives database faults (it retries and logs). Its
units feed ``/metrics``; its log records go to the ``airgate.server.worker`` logger.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airgate.runtime.worker import Worker
    from airgate.server.context import AppContext

log = logging.getLogger("airgate.server.worker")
_QUIET = frozenset({"worker_started", "worker_stopped", "config_reloaded"})


def make_worker(ctx: AppContext, interval: float) -> Worker:
    from airgate.runtime.worker import Worker

    def on_record(record: Mapping[str, Any]) -> None:
        if record.get("event") == "unit":
            if ctx.metrics is not None:
                ctx.metrics.unit(record)
            log.info("%s", {k: v for k, v in record.items() if k != "event"})
        elif record.get("event") in _QUIET:
            log.info("%s", dict(record))
        else:  # faults: retries, a lost listener, an error the next pass tries again
            log.warning("%s", dict(record))

    return Worker(ctx.store, config=ctx.local, clock=ctx.clock,
                  executors=ctx.settings.executors, poll_interval=interval, log=on_record)


def start(ctx: AppContext, interval: float) -> threading.Thread:
    """The worker's loop in a daemon thread, until ``ctx.stop`` is set."""
    worker = make_worker(ctx, interval)
    thread = threading.Thread(target=worker.run, args=(ctx.stop,), name="airgate-server-worker",
                              daemon=True)
    thread.start()
    return thread
