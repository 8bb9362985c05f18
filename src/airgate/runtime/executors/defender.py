"""The ``defender_endpoint`` executor: Microsoft Defender for Endpoint machine actions.

Each catalog action is one documented request, ``POST /api/machines/{id}/ACTION`` with
a ``Comment`` (which carries the run's idempotency key) and the action's parameter;
the machine action it answers is then polled (``GET /api/machineactions/{id}``) until
it is ``Succeeded``, ``Failed``, ``Cancelled`` or ``TimeOut``, or the executor's
time-out passes. The result (and so the ledger) holds the machine action id and its
last status. A reconciled run first looks for the machine action of the earlier run
(``GET /api/machineactions?$filter=machineId eq '...' and type eq '...'``, then the key
in ``requestorComment``) and reports it instead of sending a second one. A request
that got no answer (time-out, dropped connection) leaves the action running for that
reconciliation (``ExecResult.unknown``) rather than failing it.

``offboard_device`` is never carried out: offboarding cannot be undone from the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from airgate.runtime.executors.base import ExecRequest, ExecResult, PlannedRequest
from airgate.runtime.executors.endpoints import BASE_URLS, DEFENDER_SCOPE
from airgate.runtime.executors.entra import (
    ApiError,
    Client,
    OutcomeUnknown,
    client_from_options,
)
from airgate.runtime.executors.targets import HEX40, HEX64

BASE_URL = BASE_URLS["defender_endpoint"]
FINAL = ("Succeeded", "Failed", "Cancelled", "TimeOut")
DEFAULT_POLL = 5.0

# catalog action (or undo action) -> (path segment, MachineAction type, needs a file)
APPLY: Mapping[str, tuple[str, str]] = {
    "isolate_device": ("isolate", "Isolate"),
    "restrict_code_execution": ("restrictCodeExecution", "RestrictCodeExecution"),
    "run_antivirus_scan": ("runAntiVirusScan", "RunAntiVirusScan"),
    "collect_investigation_package": ("collectInvestigationPackage",
                                      "CollectInvestigationPackage"),
    "stop_and_quarantine_file": ("StopAndQuarantineFile", "StopAndQuarantineFile"),
}
UNDO: Mapping[str, tuple[str, str]] = {
    "release_from_isolation": ("unisolate", "Unisolate"),
    "remove_code_restriction": ("unrestrictCodeExecution", "UnrestrictCodeExecution"),
}


class DefenderExecutor:
    """Machine actions through the Defender for Endpoint API (see the module docstring)."""

    name = "defender_endpoint"

    def __init__(self, client: Client, *, timeout: float, poll_interval: float = DEFAULT_POLL,
                 isolation_type: str = "Full", scan_type: str = "Quick",
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.isolation_type = isolation_type
        self.scan_type = scan_type
        self.sleep = sleep

    def run(self, request: ExecRequest) -> ExecResult:
        try:
            with self.client.session():
                return self._run(request)
        except OutcomeUnknown as exc:
            return self._unknown(self.client.scrub(str(exc)))
        except ApiError as exc:
            return self._fail(self.client.scrub(str(exc)))

    def _fail(self, message: str, output: Any = None) -> ExecResult:
        return ExecResult(False, output, message, self.name)

    def _unknown(self, message: str, output: Any = None) -> ExecResult:
        # A reconciling run finds the machine action by the key in its comment, if any.
        return ExecResult(False, output, message, self.name, unknown=True)

    def _prepare(self, request: ExecRequest) -> tuple[str, str, str, dict[str, Any]] | ExecResult:
        """The request to send (segment, type, machine, body), or the failure that stops it."""
        action_type = str(request.action.get("action_type"))
        if action_type == "offboard_device":
            return self._fail("defender_endpoint never offboards a device: offboarding cannot"
                              " be undone through the API; do it in the Defender portal")
        if request.operation == "undo":
            undo = str(request.action.get("undo_action"))
            found = UNDO.get(undo)
            if found is None:
                return self._fail(f"defender_endpoint cannot undo {action_type}: the machine"
                                  f" actions API offers no {undo}")
        else:
            found = APPLY.get(action_type)
            if found is None:
                return self._fail(f"defender_endpoint does not carry out {action_type}")
        segment, kind = found
        machine = self._machine(request)
        if isinstance(machine, ExecResult):
            return machine
        body: dict[str, Any] = {"Comment": _comment(request)}
        if segment == "isolate":
            body["IsolationType"] = self.isolation_type
        elif segment == "runAntiVirusScan":
            body["ScanType"] = self.scan_type
        elif segment == "StopAndQuarantineFile":
            sha1 = request.target.get("sha1", "")
            if not HEX40.fullmatch(sha1):
                has256 = HEX64.fullmatch(request.target.get("sha256", ""))
                return self._fail(
                    "StopAndQuarantineFile needs the file's SHA-1 and the evidence has "
                    + ("only a SHA-256" if has256 else "no SHA-1"))
            body["Sha1"] = sha1
        return segment, kind, machine, body

    def plan(self, request: ExecRequest) -> list[PlannedRequest] | str:
        """The requests a run would send, secrets masked, without sending any."""
        prepared = self._prepare(request)
        if isinstance(prepared, ExecResult):
            return f"would fail: {prepared.message}"
        segment, kind, machine, body = prepared
        first = self.client.plan("POST", f"/api/machines/{quote(machine, safe='')}/{segment}",
                                 body=body)
        poll = self.client.plan("GET", "/api/machineactions/{id}")
        poll = PlannedRequest(poll.method, poll.url, poll.headers, None,
                              f"every {self.poll_interval:g} s until {', '.join(FINAL)} or"
                              f" {self.timeout:g} s ({kind})")
        return [self.client.plan_token(), first, poll]

    def _run(self, request: ExecRequest) -> ExecResult:
        prepared = self._prepare(request)
        if isinstance(prepared, ExecResult):
            return prepared
        segment, kind, machine, body = prepared
        deadline = time.monotonic() + self.timeout
        earlier = self._earlier(machine, kind, request) if request.reconcile else None
        action: Any = earlier
        if earlier is None:
            _, _, action = self.client.call(
                "POST", f"/api/machines/{quote(machine, safe='')}/{segment}", body=body)
        if not isinstance(action, Mapping) or not isinstance(action.get("id"), str):
            return self._fail(f"{segment}: the answer holds no machine action id")
        return self._poll(action, machine, kind, deadline, replayed=earlier is not None)

    def _machine(self, request: ExecRequest) -> str | ExecResult:
        machine = request.target.get("device_id", "")
        if not machine:
            key = str(request.entity.get("key", ""))
            if key.startswith("device:"):
                machine = key.removeprefix("device:")
        if not HEX40.fullmatch(machine):
            return self._fail("the evidence names no Defender device id (mdeDeviceId, 40 hex"
                              " digits) for this action")
        return machine.lower()

    def _earlier(self, machine: str, kind: str, request: ExecRequest) -> Mapping[str, Any] | None:
        """The machine action an earlier run with this key created, if Defender has one."""
        _, _, answer = self.client.call(
            "GET", "/api/machineactions",
            params={"$filter": f"machineId eq '{machine}' and type eq '{kind}'"})
        items = answer.get("value") if isinstance(answer, Mapping) else None
        if not isinstance(items, list):
            raise ApiError("GET /api/machineactions: the answer holds no value list")
        for item in items:
            if isinstance(item, Mapping) and request.idempotency_key in str(
                    item.get("requestorComment") or ""):
                return item
        return None

    def _poll(self, action: Mapping[str, Any], machine: str, kind: str, deadline: float, *,
              replayed: bool) -> ExecResult:
        action_id = str(action["id"])
        status = str(action.get("status") or "Pending")
        while status not in FINAL:
            if time.monotonic() >= deadline:
                return self._fail(
                    f"machine action {action_id} still {status} after {self.timeout:g} s",
                    _output(action_id, kind, machine, status, replayed))
            self.sleep(self.poll_interval)
            try:
                _, _, answer = self.client.call(
                    "GET", f"/api/machineactions/{quote(action_id, safe='')}")
            except OutcomeUnknown as exc:
                return self._unknown(f"{self.client.scrub(str(exc))} (machine action"
                                     f" {action_id} was {status})",
                                     _output(action_id, kind, machine, status, replayed))
            except ApiError as exc:
                # The action was sent: the failure must still name it, for a person to follow.
                return self._fail(f"{self.client.scrub(str(exc))} (machine action {action_id}"
                                  f" was {status})",
                                  _output(action_id, kind, machine, status, replayed))
            if not isinstance(answer, Mapping) or not isinstance(answer.get("status"), str):
                return self._fail(f"GET /api/machineactions/{action_id}: the answer holds no"
                                  " status", _output(action_id, kind, machine, status, replayed))
            status = answer["status"]
        output = _output(action_id, kind, machine, status, replayed)
        if status != "Succeeded":
            return self._fail(f"machine action {action_id} ({kind}) ended {status}", output)
        note = "found the earlier machine action" if replayed else "machine action"
        return ExecResult(True, output, f"{note} {action_id} ({kind}): Succeeded", self.name,
                          {"replayed": replayed})


def _output(action_id: str, kind: str, machine: str, status: str,
            replayed: bool) -> dict[str, Any]:
    return {"machine_action_id": action_id, "type": kind, "machine_id": machine,
            "status": status, "found_earlier": replayed}


def _comment(request: ExecRequest) -> str:
    # Only airgate's own values: the key makes the machine action findable on reconcile.
    return (f"airgate action {request.action.get('id')} {request.operation}"
            f" [{request.idempotency_key}]")


def defender_executor(options: Mapping[str, Any], timeout: float) -> DefenderExecutor:
    client = client_from_options(options, scope=DEFENDER_SCOPE, base_url=BASE_URL,
                                 timeout=timeout)
    return DefenderExecutor(client, timeout=timeout,
                            poll_interval=float(options.get("poll_interval", DEFAULT_POLL)),
                            isolation_type=str(options.get("isolation_type", "Full")),
                            scan_type=str(options.get("scan_type", "Quick")))
