"""The ``graph_email`` and ``graph_identity`` executors: Microsoft Graph.

``graph_email`` remediates one analyzed message (network message id and recipient from
the evidence) with ``POST /security/collaboration/analyzedEmails/remediate`` (a beta
API: its base URL defaults to ``https://graph.microsoft.com/beta``). Graph answers
``202 Accepted`` and a ``Location`` to track the remediation in the Action center;
there is no documented request to poll it, so the run completes on the 202 and the
result keeps that link. Email actions have no undo in the catalog: a message is moved
back by a new action (``redo --action move_to_inbox``).

``graph_identity`` acts on an Entra ID user found by the evidence's object id, else its
UPN (a local account has neither and gets a clear failure): ``revoke_sessions`` is
``POST /users/{id}/revokeSignInSessions``; ``disable_user`` is ``PATCH /users/{id}``
with ``accountEnabled: false``, undone by ``accountEnabled: true``;
``force_password_reset`` is ``PATCH /users/{id}`` with
``passwordProfile.forceChangePasswordNextSignIn: true``.

Every Graph request carries ``client-request-id``, a UUID derived from the run's
idempotency key. All these requests set a state (or revoke what exists), so a
reconciled run sends the same request again: its effect is the same as one. A request
that got no answer leaves the action running for that reconciliation.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from airgate.runtime.executors.base import ExecRequest, ExecResult, PlannedRequest
from airgate.runtime.executors.endpoints import BASE_URLS, GRAPH_SCOPE
from airgate.runtime.executors.entra import (
    ApiError,
    Client,
    OutcomeUnknown,
    client_from_options,
)
from airgate.runtime.executors.targets import EMAIL, GUID, NETWORK_MESSAGE_ID, UPN

EMAIL_BASE_URL = BASE_URLS["graph_email"]
IDENTITY_BASE_URL = BASE_URLS["graph_identity"]
REMEDIATE = "/security/collaboration/analyzedEmails/remediate"
EMAIL_ACTIONS: Mapping[str, str] = {
    "soft_delete_email": "softDelete",
    "hard_delete_email": "hardDelete",
    "move_to_junk": "moveToJunk",
    "move_to_inbox": "moveToInbox",
    "move_to_deleted_items": "moveToDeletedItems",
}


def request_id(key: str) -> str:
    """The ``client-request-id`` of a run: Graph wants a GUID, the key is airgate's text."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))


class _GraphExecutor:
    name = "graph"

    def __init__(self, client: Client, *, timeout: float) -> None:
        self.client = client
        self.timeout = timeout

    def run(self, request: ExecRequest) -> ExecResult:
        try:
            with self.client.session():
                return self._run(request)
        except OutcomeUnknown as exc:
            # the reconciling run sends it again with the same client-request-id
            return ExecResult(False, None, self.client.scrub(str(exc)), self.name, unknown=True)
        except ApiError as exc:
            return self._fail(self.client.scrub(str(exc)))

    def _fail(self, message: str, output: Any = None) -> ExecResult:
        return ExecResult(False, output, message, self.name)

    def _prepare(self, request: ExecRequest) -> tuple[str, str, dict[str, Any] | None] | ExecResult:
        """The request to send (method, path, JSON body), or the failure that stops it."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _run(self, request: ExecRequest) -> ExecResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def plan(self, request: ExecRequest) -> list[PlannedRequest] | str:
        """The requests a run would send, secrets masked, without sending any."""
        prepared = self._prepare(request)
        if isinstance(prepared, ExecResult):
            return f"would fail: {prepared.message}"
        method, path, body = prepared
        return [self.client.plan_token(), self.client.plan(
            method, path, body=body, request_id=request_id(request.idempotency_key))]


class GraphEmailExecutor(_GraphExecutor):
    """Email remediation through Graph's analyzedEmails/remediate."""

    name = "graph_email"

    def __init__(self, client: Client, *, timeout: float, severity: str = "medium") -> None:
        super().__init__(client, timeout=timeout)
        self.severity = severity

    def _prepare(self, request: ExecRequest) -> tuple[str, str, dict[str, Any] | None] | ExecResult:
        action_type = str(request.action.get("action_type"))
        if request.operation == "undo":
            return self._fail(f"{action_type} has no undo: move the message back with a new"
                              " action (airgate redo ID --action move_to_inbox)")
        action = EMAIL_ACTIONS.get(action_type)
        if action is None:
            return self._fail(f"graph_email does not carry out {action_type}")
        if request.entity.get("type") != "analyzedMessage":
            return self._fail(f"graph_email remediates one analyzed message; a"
                              f" {request.entity.get('type')} names none")
        nmid, recipient = _message(request)
        if not NETWORK_MESSAGE_ID.fullmatch(nmid) or not EMAIL.fullmatch(recipient):
            return self._fail("the evidence names no network message id and recipient for"
                              " this message")
        body = {
            "displayName": f"airgate action {request.action.get('id')}"
                           f" [{request.idempotency_key}]",
            "description": f"airgate {action_type}",
            "severity": self.severity,
            "action": action,
            "remediateSendersCopy": False,
            "analyzedEmails": [{"networkMessageId": nmid, "recipientEmailAddress": recipient}],
        }
        return "POST", REMEDIATE, body

    def _run(self, request: ExecRequest) -> ExecResult:
        prepared = self._prepare(request)
        if isinstance(prepared, ExecResult):
            return prepared
        _, _, body = prepared
        assert body is not None
        action = str(body["action"])
        [email] = body["analyzedEmails"]
        nmid, recipient = email["networkMessageId"], email["recipientEmailAddress"]
        status, headers, _ = self.client.call(
            "POST", REMEDIATE, body=body, request_id=request_id(request.idempotency_key))
        output = {"action": action, "network_message_id": nmid, "recipient": recipient,
                  "http_status": status, "tracking": headers.get("Location", ""),
                  **_ids(headers, request)}
        return ExecResult(True, output, f"remediation {action} accepted ({status})", self.name)


def _message(request: ExecRequest) -> tuple[str, str]:
    nmid = request.target.get("network_message_id", "")
    recipient = request.target.get("recipient", "")
    key = str(request.entity.get("key", ""))
    if (not nmid or not recipient) and key.startswith("analyzedMessage:"):
        # analyzedMessage:<networkMessageId>:<recipient lowercased>
        from_key, _, to = key.removeprefix("analyzedMessage:").partition(":")
        nmid, recipient = nmid or from_key, recipient or to
    return nmid, recipient


class GraphIdentityExecutor(_GraphExecutor):
    """Entra ID user actions through Graph's users API."""

    name = "graph_identity"

    def _prepare(self, request: ExecRequest) -> tuple[str, str, dict[str, Any] | None] | ExecResult:
        action_type = str(request.action.get("action_type"))
        undo = request.operation == "undo"
        if undo and request.action.get("undo_action") != "enable_user":
            return self._fail(f"graph_identity cannot undo {action_type}")
        if action_type not in ("revoke_sessions", "disable_user", "force_password_reset"):
            return self._fail(f"graph_identity does not carry out {action_type}")
        user = _user(request)
        if user is None:
            return self._fail("the evidence names no Entra identity (object id or UPN) for"
                              " this user: a local account cannot be acted on in Entra ID")
        path = f"/users/{quote(user, safe='@')}"
        if action_type == "revoke_sessions":
            return "POST", f"{path}/revokeSignInSessions", None
        if action_type == "disable_user":
            return "PATCH", path, {"accountEnabled": undo}
        return "PATCH", path, {"passwordProfile": {"forceChangePasswordNextSignIn": True}}

    def _run(self, request: ExecRequest) -> ExecResult:
        prepared = self._prepare(request)
        if isinstance(prepared, ExecResult):
            return prepared
        method, path, body = prepared
        user = _user(request)
        action_type = str(request.action.get("action_type"))
        undo = request.operation == "undo"
        status, headers, answer = self.client.call(
            method, path, body=body, request_id=request_id(request.idempotency_key))
        if body is None:
            value = answer.get("value") if isinstance(answer, Mapping) else None
            if value is not True:
                return self._fail(f"revokeSignInSessions answered {status} without"
                                  " value: true", {"user": user, "http_status": status})
            change: dict[str, Any] = {"revokeSignInSessions": True}
        else:
            change = body
        output = {"user": user, "http_status": status, "change": change,
                  **_ids(headers, request)}
        return ExecResult(True, output, f"{'undone' if undo else action_type}: user {user}"
                          f" ({status})", self.name)


def _ids(headers: Mapping[str, str], request: ExecRequest) -> dict[str, str]:
    """The ids Microsoft support asks for: Graph's ``request-id`` for this request (its
    remote id; the revocation answers no other), and the ``client-request-id`` sent."""
    return {"request_id": str(headers.get("request-id", "")),
            "client_request_id": request_id(request.idempotency_key)}


def _user(request: ExecRequest) -> str | None:
    """The object id, else the UPN, from the evidence; else the key when it is an object
    id (a key's UPN-like tail may be a local account on a device: ``root@<device>``)."""
    object_id = request.target.get("user_id", "")
    if GUID.fullmatch(object_id):
        return object_id.lower()
    upn = request.target.get("upn", "")
    if UPN.fullmatch(upn):
        return upn
    key = str(request.entity.get("key", "")).removeprefix("user:")
    return key.lower() if GUID.fullmatch(key) else None


def graph_email_executor(options: Mapping[str, Any], timeout: float) -> GraphEmailExecutor:
    client = client_from_options(options, scope=GRAPH_SCOPE, base_url=EMAIL_BASE_URL,
                                 timeout=timeout)
    return GraphEmailExecutor(client, timeout=timeout,
                              severity=str(options.get("severity", "medium")))


def graph_identity_executor(options: Mapping[str, Any], timeout: float) -> GraphIdentityExecutor:
    client = client_from_options(options, scope=GRAPH_SCOPE, base_url=IDENTITY_BASE_URL,
                                 timeout=timeout)
    return GraphIdentityExecutor(client, timeout=timeout)
