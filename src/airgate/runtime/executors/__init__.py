"""Executors carry approved actions out, and undo them: one module per executor type.

Every executor takes an ``ExecRequest`` and answers an ``ExecResult``
(``base.py``); none raises for a failure of the action itself, and each is
idempotent on the request's ``idempotency_key``, which is what lets a run whose
process died be finished without acting twice. ``record`` (``record.py``)
has no external effect; ``command`` (``command.py``) runs a configured
program; ``defender_endpoint`` (``defender.py``), ``graph_email`` and ``graph_identity``
(``graph.py``) call Microsoft's APIs (``entra.py``) with an Entra ID app token from
MSAL (``tokens.py``) and a credential from a variable or a file (``credentials.py``);
``http`` (``http.py``) sends the request, signed, to a configured URL. A new
executor type is a module here plus a line in ``make_executor``, and its config
shape in ``runtime/config.py``.

May use: the runtime's records, clock and config. Never the queue or the store.
"""

from __future__ import annotations

from airgate.runtime.clock import Clock
from airgate.runtime.config import ExecutorConfig
from airgate.runtime.executors.base import ExecRequest, ExecResult, Executor, RecordStore
from airgate.runtime.executors.command import CommandExecutor
from airgate.runtime.executors.record import RecordExecutor

# Executors that call Microsoft's APIs (defender.py, graph.py), built by remote.py.
REMOTE = ("defender_endpoint", "graph_email", "graph_identity")


def make_executor(
    config: ExecutorConfig, records: RecordStore, clock: Clock | None = None
) -> Executor:
    if config.type == "command":
        return CommandExecutor(config.argv, config.timeout)
    if config.type in REMOTE:
        # imported here: httpx (the executors extra) loads only when such an executor runs
        from airgate.runtime.executors.remote import remote_executor

        return remote_executor(config.type, config.options, float(config.timeout))
    if config.type == "http":
        from airgate.runtime.executors.http import HttpExecutor, options_of

        return HttpExecutor(str(config.options["url"]), timeout=config.timeout,
                            **options_of(config.options))
    return RecordExecutor(records, clock)


__all__ = ["CommandExecutor", "ExecRequest", "ExecResult", "Executor", "RecordExecutor",
           "RecordStore", "make_executor"]
