"""``/metrics`` in Prometheus text format: each app has its own registry, so tests and
several apps in one process never share counters.

- ``airgate_pending_actions{action_type}``: read from the store at each scrape;
- ``airgate_decisions_total{action_type,outcome}``: what submissions became;
- ``airgate_transitions_total{action_type,operation,outcome}``: approvals, rejections,
  undos (outcome = the status the action reached: completed, failed, rejected...);
- ``airgate_executions_total{action_type,operation,outcome}``: executor runs this server
  started (automatic actions on submit, the approvals that complete a quorum, undos),
  by what they ended as (completed, failed, undone, running: the outcome is unknown);
- ``airgate_worker_units_total{unit,action_type,outcome}``: what the in-process worker
  did (execute, undo, revert, expire, reconcile) and how it ended;
- ``airgate_request_seconds{method,route,status}``: request latency histogram.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from airgate.runtime.records import ActionRecord
    from airgate.runtime.store import Store

_RAN = ("completed", "failed", "undone", "running")  # statuses only an executor run leaves
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Pending(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("airgate_pending_actions", "Pending actions by action type",
                                  labels=["action_type"])
        with self.store.read() as tx:
            counts = tx.count_by_type("pending")
        for action_type, n in sorted(counts.items()):
            gauge.add_metric([action_type], n)
        yield gauge


class Metrics:
    """The counters and histogram of one app."""

    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_Pending(store))
        self.decisions = Counter("airgate_decisions", "Submitted decisions by what they became",
                                 ["action_type", "outcome"], registry=self.registry)
        self.transitions = Counter(
            "airgate_transitions", "Approvals, rejections and undos by the status reached",
            ["action_type", "operation", "outcome"], registry=self.registry)
        self.executions = Counter(
            "airgate_executions", "Executor runs started by this server, by how they ended",
            ["action_type", "operation", "outcome"], registry=self.registry)
        self.units = Counter("airgate_worker_units", "Units the in-process worker carried out",
                             ["unit", "action_type", "outcome"], registry=self.registry)
        self.latency = Histogram("airgate_request_seconds", "HTTP request latency",
                                 ["method", "route", "status"], registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def submitted(self, outcomes: Iterable[Any]) -> None:
        # Counted first: a batch of thousands of outcomes has a few label sets, and each
        # labels() lookup takes a lock.
        decided: collections.Counter[tuple[str, str]] = collections.Counter()
        ran: collections.Counter[tuple[str, str]] = collections.Counter()
        for o in outcomes:
            decided[o.decision.action, o.outcome] += 1
            if o.outcome == "created" and o.action is not None and o.action.run_key:
                ran[o.action.action_type, o.action.status] += 1
        for (action, outcome), n in decided.items():
            self.decisions.labels(action, outcome).inc(n)
        for (action_type, status), n in ran.items():
            self.executions.labels(action_type, "apply", status).inc(n)

    def settled(self, operation: str, actions: Iterable[ActionRecord]) -> None:
        for a in actions:
            self.transitions.labels(a.action_type, operation, a.status).inc()
            if operation in ("approve", "undo") and a.status in _RAN:
                self.executions.labels(a.action_type, "apply" if operation == "approve"
                                       else "undo", a.status).inc()


    def unit(self, record: Mapping[str, Any]) -> None:
        """One unit the worker logged: counted, and as an execution when it ran one."""
        kind = str(record.get("unit", ""))
        action_type = str(record.get("action_type", ""))
        outcome = str(record.get("outcome", ""))
        self.units.labels(kind, action_type, outcome).inc()
        if kind in ("execute", "undo", "revert", "reconcile"):
            self.executions.labels(action_type, "apply" if kind == "execute" else kind,
                                   outcome).inc()
