"""Executors carry actions out: ``record`` (no external effect) and ``command`` (a program).

Both take an ``ExecRequest`` and answer an ``ExecResult``; neither raises for a
failure of the action itself. Both are idempotent on the request's
``idempotency_key``, which is what lets ``tick`` finish an action whose process
died mid-run without carrying it out twice:

- ``record`` keeps one row per key in the store; asked again, it returns that row.
- ``command`` programs receive the key on stdin and must treat a second request
  with a key they have already seen as "report what you did", not "do it again".
  A reconciling request carries ``"reconcile": true``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .clock import Clock, SystemClock, format_time
from .config import ExecutorConfig

MAX_OUTPUT = 64 * 1024  # bytes of stdout/stderr kept from a command


@dataclass(frozen=True)
class ExecRequest:
    operation: str  # apply | undo
    action: Mapping[str, Any]
    entity: Mapping[str, Any]
    idempotency_key: str
    reconcile: bool = False

    def as_json(self) -> str:
        return json.dumps({
            "operation": self.operation,
            "action": dict(self.action),
            "entity": dict(self.entity),
            "idempotency_key": self.idempotency_key,
            "reconcile": self.reconcile,
        }, sort_keys=True, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class ExecResult:
    ok: bool
    output: Any = None
    message: str = ""
    executor: str = "record"
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "executor": self.executor, "output": self.output,
                "message": self.message}


class Executor(Protocol):
    name: str

    def run(self, request: ExecRequest) -> ExecResult:
        """Carry out (or undo) the action; never raise for the action's own failure."""
        ...


class RecordStore(Protocol):
    """What the record executor needs from the store (a transaction per call)."""

    def record_once(self, key: str, action_id: int, operation: str, at: str,
                    result: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Keep ``result`` under ``key`` unless a result is there already; return the kept
        result and whether it was new."""
        ...


class RecordExecutor:
    """No external effect: the request is recorded once per idempotency key."""

    name = "record"

    def __init__(self, records: RecordStore, clock: Clock | None = None) -> None:
        self.records = records
        self.clock: Clock = clock or SystemClock()

    def run(self, request: ExecRequest) -> ExecResult:
        result = {"recorded": True, "operation": request.operation,
                  "action_type": request.action.get("action_type")}
        kept, new = self.records.record_once(
            request.idempotency_key, int(request.action["id"]), request.operation,
            format_time(self.clock.now()), result)
        return ExecResult(True, kept["result"], "recorded" if new else "already recorded",
                          self.name, {"at": kept["at"], "replayed": not new})


class CommandExecutor:
    """Runs a configured program: argv from the config only, the request as JSON on stdin."""

    name = "command"

    def __init__(self, argv: tuple[str, ...], timeout: float) -> None:
        if not argv:
            raise ValueError("a command executor needs an argv")
        self.argv = list(argv)
        self.timeout = timeout

    def run(self, request: ExecRequest) -> ExecResult:
        try:
            proc = subprocess.run(  # no shell: argv comes from the config, evidence from stdin
                self.argv, input=request.as_json().encode("utf-8"), capture_output=True,
                timeout=self.timeout, shell=False, check=False,
            )
        except subprocess.TimeoutExpired:
            return ExecResult(False, None, f"timed out after {self.timeout:g} s", self.name)
        except OSError as exc:
            return ExecResult(False, None, f"cannot run {self.argv[0]}: {exc.strerror}", self.name)
        stdout = proc.stdout[:MAX_OUTPUT].decode("utf-8", "replace")
        stderr = proc.stderr[:MAX_OUTPUT].decode("utf-8", "replace").strip()
        if proc.returncode != 0:
            message = stderr or stdout.strip() or "no message"
            return ExecResult(False, None, f"exit status {proc.returncode}: {message}", self.name)
        output: Any = None
        if stdout.strip():
            try:
                output = json.loads(stdout)
            except ValueError:
                # Exit 0 is what says "done"; a program that prints text is kept as text.
                output = {"stdout": stdout}
        return ExecResult(True, output, stderr, self.name)


def make_executor(
    config: ExecutorConfig, records: RecordStore, clock: Clock | None = None
) -> Executor:
    if config.type == "command":
        return CommandExecutor(config.argv, config.timeout)
    return RecordExecutor(records, clock)
