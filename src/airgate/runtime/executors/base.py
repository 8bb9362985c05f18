"""What every executor shares: the request it is given, the result it answers, its protocol.

Both take an ``ExecRequest`` and answer an ``ExecResult``; neither raises for a
failure of the action itself. Both are idempotent on the request's
``idempotency_key``, which is what lets ``tick`` finish an action whose process
died mid-run without carrying it out twice:

- ``record`` keeps one row per key in the store; asked again, it returns that row.
- ``command`` programs receive the key on stdin and must treat a second request
  with a key they have already seen as "report what you did", not "do it again".
  A reconciling request carries ``"reconcile": true``.

An executor that sent a request and got no answer says ``unknown=True``: the action
stays running and ``tick`` asks again with the same key. A request that never left
(connection refused, no secret) is a plain failure.

Whatever an executor answers, ``Runtime.execute`` records it: ``output.py``
turns a report that cannot be stored and hashed as it is into escaped text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ExecRequest:
    operation: str  # apply | undo
    action: Mapping[str, Any]
    entity: Mapping[str, Any]
    idempotency_key: str
    reconcile: bool = False
    # Identifiers the remote APIs address (targets.py): device id, SHA-1, network message
    # id, recipient, Entra object id or UPN, taken from the stored evidence as data.
    # Not part of ``as_json``: a command program's stdin is unchanged.
    target: Mapping[str, str] = field(default_factory=dict)

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
    # The request may have reached the service but no answer came (time-out, dropped
    # connection): whether it acted is unknown. ``Runtime.execute`` then records that and
    # leaves the action running under its idempotency key for ``tick`` to reconcile,
    # instead of a failure the service may contradict. Always with ``ok`` False.
    unknown: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "executor": self.executor, "output": self.output,
                "message": self.message}


MASK = "***"
# Header names whose value is (or derives from) a secret: never shown by a dry run.
_SECRET_WORDS = ("authorization", "cookie", "secret", "token", "signature", "api-key",
                 "apikey", "password")


def masked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with every value that carries a secret replaced by ``***``."""
    return {name: MASK if any(w in name.lower() for w in _SECRET_WORDS) else value
            for name, value in headers.items()}


@dataclass(frozen=True)
class PlannedRequest:
    """One HTTP request a run would send (``approve --dry-run``), its secrets masked:
    ``body`` is the JSON body (or the form of a token request), ``note`` says when or how
    often it is sent."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: Any = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "url": self.url, "headers": dict(self.headers),
                "body": self.body, "note": self.note}


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
