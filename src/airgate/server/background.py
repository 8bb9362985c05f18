"""The time-driven work while the server runs: expiries, due timed reverts and the
reconciliation of runs whose process died (``Queue.tick``), every few seconds.

It runs in one daemon thread of the server process unless ``--no-worker`` leaves it
to separate processes. A failing round is logged and the next one tries again: the
loop must outlive a locked database or an executor's error.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from airgate.errors import AirgateError

if TYPE_CHECKING:
    from airgate.server.context import AppContext

log = logging.getLogger("airgate.server.worker")


def tick_once(ctx: AppContext) -> dict[str, list[int]]:
    """One round of the time-driven work; what it did, by kind."""
    report = ctx.queue().tick().as_dict()
    if ctx.metrics is not None:
        ctx.metrics.ticked(report)
    return report


def run(ctx: AppContext, stop: threading.Event, interval: float) -> None:
    """Tick until ``stop`` is set."""
    while not stop.is_set():
        try:
            report = tick_once(ctx)
            if any(report.values()):
                log.info("tick: %s", {k: len(v) for k, v in report.items() if v})
        except AirgateError as exc:
            log.warning("tick failed: %s", exc)
        except Exception:
            log.exception("tick failed")
        stop.wait(interval)


def start(ctx: AppContext, interval: float) -> threading.Thread:
    thread = threading.Thread(target=run, args=(ctx, ctx.stop, interval),
                              name="airgate-worker", daemon=True)
    thread.start()
    return thread
