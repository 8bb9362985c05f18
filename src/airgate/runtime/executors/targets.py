"""What the remote executors address, read from an action's stored evidence.

Evidence is attacker-influenced: every identifier is checked against the shape its
service gives it (a Defender machine id is 40 hex digits, a SHA-1 40, an Entra object
id a GUID) before it may reach a request, and is then sent as data: a quoted path
segment or a JSON value, never spliced into a URL as it came.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

HEX40 = re.compile(r"[0-9a-fA-F]{40}")
HEX64 = re.compile(r"[0-9a-fA-F]{64}")
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# user@domain, nothing that could leave a path segment or a query
UPN = re.compile(r"[A-Za-z0-9._%+'#$&*!~^{}=-]{1,113}@[A-Za-z0-9.-]{1,255}")
EMAIL = UPN
# Exchange's network message id is a GUID; be lenient on case only
NETWORK_MESSAGE_ID = GUID


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _sub(fields: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = fields.get(name)
    return value if isinstance(value, Mapping) else {}


def _hash(fields: Mapping[str, Any], name: str) -> str | None:
    for holder in (_sub(fields, "fileDetails"), _sub(fields, "imageFile"), fields):
        value = _text(holder.get(name))
        if value is not None:
            return value.lower()
    return None


def target_of(fields: Mapping[str, Any]) -> dict[str, str]:
    """The identifiers one evidence item holds (unchecked: the executors validate them)."""
    account = _sub(fields, "userAccount") or fields
    found = {
        "device_id": _text(fields.get("mdeDeviceId")),
        "sha1": _hash(fields, "sha1"),
        "sha256": _hash(fields, "sha256"),
        "network_message_id": _text(fields.get("networkMessageId")),
        "recipient": _text(fields.get("recipientEmailAddress")),
        "user_id": _text(account.get("azureAdUserId")),
        "upn": _text(account.get("userPrincipalName")),
    }
    return {k: v for k, v in found.items() if v is not None}


def target_from_evidence(documents: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The identifiers of an action's evidence: the first document that has each wins
    (merged evidence names the same entity, by its identity key)."""
    out: dict[str, str] = {}
    for doc in documents:
        data = doc.get("data")
        fields = data.get("fields") if isinstance(data, Mapping) else None
        if isinstance(fields, Mapping):
            for k, v in target_of(fields).items():
                out.setdefault(k, v)
    return out
