"""The ``record`` executor: no external effect, the request is kept once per idempotency key."""

from __future__ import annotations

from airgate.runtime.clock import Clock, SystemClock, format_time
from airgate.runtime.executors.base import ExecRequest, ExecResult, RecordStore


class RecordExecutor:
    """No external effect: the request is recorded once per idempotency key."""

    name = "record"

    def __init__(self, records: RecordStore, clock: Clock | None = None) -> None:
        self.records = records
        self.clock: Clock = clock or SystemClock()

    def plan(self, request: ExecRequest) -> str:
        """What a run would do, in one line (it sends nothing)."""
        return (f"record: no external effect; the request is recorded under"
                f" {request.idempotency_key}")

    def run(self, request: ExecRequest) -> ExecResult:
        result = {"recorded": True, "operation": request.operation,
                  "action_type": request.action.get("action_type")}
        kept, new = self.records.record_once(
            request.idempotency_key, int(request.action["id"]), request.operation,
            format_time(self.clock.now()), result)
        return ExecResult(True, kept["result"], "recorded" if new else "already recorded",
                          self.name, {"at": kept["at"], "replayed": not new})
