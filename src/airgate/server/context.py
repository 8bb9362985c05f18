"""What every request works with: the store, the policy set, its compiled engine, the
local config, and a queue governed the way ``airgate`` commands are."""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airgate.errors import UsageError
from airgate.runtime.clock import ENV_NOW, Clock, FixedClock, SystemClock, pinned_time

if TYPE_CHECKING:
    from airgate.engine.core import Engine
    from airgate.model import PolicySet
    from airgate.runtime.config import Config
    from airgate.runtime.executors import Executor
    from airgate.runtime.queue import Queue
    from airgate.runtime.store import Store
    from airgate.server.metrics import Metrics

log = logging.getLogger("airgate.server")
POOL_SIZE = 10
MAX_BODY_BYTES = 16 * 1024 * 1024  # the evidence reader's own bound on one JSON document


@dataclass(frozen=True)
class ServerSettings:
    """How ``airgate serve`` was started. ``clock`` and ``executors`` are for tests."""

    db: str | None = None
    policy_paths: tuple[str, ...] = ()
    config_path: str | None = None
    worker: bool = True
    worker_interval: float = 5.0
    max_body_bytes: int = MAX_BODY_BYTES
    engine: str = "indexed"
    processes: int = 1  # serve --workers: server processes sharing the port
    clock: Clock | None = None
    executors: Mapping[str, Executor] | None = field(default=None, repr=False)


class AppContext:
    """The store and policy one server works with, opened once at start-up."""

    def __init__(self, settings: ServerSettings) -> None:
        from airgate.engine import core as engine_mod
        from airgate.policy.loader import load_policy_set
        from airgate.runtime.config import load_config
        from airgate.runtime.governance import read_settings
        from airgate.runtime.store import Store

        if not settings.policy_paths:
            raise UsageError("airgate serve needs --policy: the policy set that decides")
        self.settings = settings
        self.local: Config = load_config(settings.config_path)
        self.policy_set: PolicySet = load_policy_set(list(settings.policy_paths))
        self.engine: Engine = engine_mod.compile(self.policy_set, engine=settings.engine)
        pinned = pinned_time()
        target = settings.db or os.environ.get("AIRGATE_DB") or self.local.store or None
        # A long-running process on PostgreSQL: a pool checked before use (a restarted
        # server's dropped connections), sized for concurrent requests and the worker.
        self.store: Store = Store(target, create=True, pool_size=POOL_SIZE)
        try:
            if settings.clock is not None:
                self.clock: Clock = settings.clock
            elif pinned is not None:
                if not read_settings(self.store).demo:
                    raise UsageError(f"{ENV_NOW} pins the clock only on a demo store (airgate"
                                     " init --demo); this store is not one: unset it")
                self.clock = FixedClock(pinned)
            else:
                self.clock = SystemClock()
        except BaseException:
            self.store.close()
            raise
        self.stop = threading.Event()
        self.metrics: Metrics | None = None  # set by create_app
        # Reading, evaluating and submitting evidence is CPU work under the GIL, and a
        # submit's write transaction is the store's one writer anyway: two requests at
        # once took turns on the GIL and the write lock and together ran slower than one
        # after the other (benchmarks/README.md). Requests queue here instead.
        self.evidence_lane = threading.Lock()
        self._warned: set[str] = set()

    def now(self) -> dt.datetime:
        return self.clock.now()

    def queue(self) -> Queue:
        """A queue obeying the config the store holds now (a push takes effect at once)."""
        from airgate.runtime.governance import governed_config
        from airgate.runtime.queue import Queue

        config, warning = governed_config(self.store, self.local)
        if warning and warning not in self._warned:
            self._warned.add(warning)
            log.warning("%s", warning)
        return Queue(self.store, config=config, clock=self.clock,
                     catalog=self.policy_set.catalog, executors=self.settings.executors)

    def close(self) -> None:
        self.stop.set()
        self.store.close()
