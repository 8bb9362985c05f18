"""Microsoft 365 Defender (Defender XDR) API incidents: entities in Graph's field names.

``GET https://api.security.microsoft.com/api/incidents`` returns incidents whose
``alerts[]`` carry ``entities[]`` (``entityType`` User, Ip, Url, File, Process,
MailBox, MailMessage, MailCluster, Registry, SecurityGroup, Machine...) and
``devices[]``. Many SOAR connectors pass that shape on as is. This module only
translates: an entity becomes an airgate entity type and fields named the way
Microsoft Graph names them, so that rules (``fileDetails.sha256``,
``userAccount.userPrincipalName``) and identity keys (airgate.evidence.graph) are
the same whichever API the evidence came from. airgate.evidence.documents builds
the records. Every translation is listed in docs/evidence.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airgate.catalog import ENTITY_TYPES

# entityType, lowercased (the API writes both "MailBox" and "Mailbox") -> airgate type.
# "registry" is decided per entity: a value when it names one (registryValueName), else a
# key (registryValue, the data, alone names no value).
ENTITY_TYPE_NAMES: Mapping[str, str] = {
    "user": "user",
    "account": "user",
    "ip": "ip",
    "url": "url",
    "file": "file",
    "process": "process",
    "mailbox": "mailbox",
    "mailmessage": "analyzedMessage",
    "mailcluster": "mailCluster",
    "securitygroup": "securityGroup",
    "machine": "device",
    "registry": "registryKey",
}

# Fields every entity type renames the same way.
_COMMON = {"deviceId": "mdeDeviceId", "evidenceCreationTime": "createdDateTime"}
_FILE = ("sha1", "sha256", "md5", "fileName", "filePath")
_ACCOUNT = {"accountName": "accountName", "domainName": "domainName", "userSid": "userSid",
            "aadUserId": "azureAdUserId", "userPrincipalName": "userPrincipalName"}
# Per entity type: flat renames, and groups of fields nested under one Graph field.
_RENAMES: Mapping[str, Mapping[str, str]] = {
    "process": {"processCreationTime": "processCreationDateTime",
                "parentProcessCreationTime": "parentProcessCreationDateTime"},
    "mailbox": {"mailboxAddress": "primaryAddress", "mailboxDisplayName": "displayName",
                "userPrincipalName": "upn"},
    "analyzedMessage": {"recipient": "recipientEmailAddress"},
    "securityGroup": {"securityGroupName": "displayName"},
}
_NESTED: Mapping[str, tuple[tuple[str, Mapping[str, str]], ...]] = {
    "user": (("userAccount", _ACCOUNT),),
    "file": (("fileDetails", {name: name for name in _FILE}),),
    "process": (("imageFile", {name: name for name in _FILE}), ("userAccount", _ACCOUNT)),
    # The Sender the portal shows for a message is its From address: Graph's p2Sender.
    "analyzedMessage": (("p2Sender", {"sender": "emailAddress"}),),
}
# Fields of an alert's devices[] entry that a Machine entity gets (Graph deviceEvidence names).
_DEVICE_FIELDS = ("deviceDnsName", "osPlatform", "osBuild", "rbacGroupName", "healthStatus",
                  "riskScore", "aadDeviceId", "version")


def identifier(value: object) -> str | None:
    """An incident or alert id as airgate keeps it: a non-blank string or an integer, as text."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def is_incident(data: Mapping[str, Any]) -> bool:
    """An incident of the Defender XDR API (``incidentId``, no Graph ``id``)."""
    return "incidentId" in data and "id" not in data and (
        "alerts" in data or "incidentName" in data)


def is_alert(data: Mapping[str, Any]) -> bool:
    """An alert of the Defender XDR API: ``alertId`` and ``entities``, no Graph ``evidence``."""
    return "alertId" in data and "entities" in data and "evidence" not in data


def entity_type(raw: str, entity: Mapping[str, Any]) -> tuple[str, bool]:
    """The airgate entity type of an ``entityType``, and whether airgate knows that type."""
    found = ENTITY_TYPE_NAMES.get(raw.lower())
    if found == "registryKey" and entity.get("registryValueName") is not None:
        return "registryValue", True
    if found is not None:
        return found, True
    derived = raw[:1].lower() + raw[1:]  # "CloudApplication" -> "cloudApplication"
    return derived, derived in ENTITY_TYPES


def device_info(devices: object) -> dict[str, dict[str, Any]]:
    """mdatpDeviceId -> the device's fields in Graph names, from an alert's ``devices[]``."""
    found: dict[str, dict[str, Any]] = {}
    if not isinstance(devices, list):
        return found
    for device in devices:
        if not isinstance(device, dict):
            continue
        device_id = identifier(device.get("mdatpDeviceId"))
        if device_id is not None:
            found.setdefault(device_id, {
                name: device[name] for name in _DEVICE_FIELDS if device.get(name) is not None
            })
    return found


def fields(kind: str, entity: Mapping[str, Any],
           devices: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The entity's fields in Graph names; null fields (the API sends every field of every
    type, mostly null) are left out, and fields with no Graph name are kept as they are."""
    renames = _RENAMES.get(kind, {})
    nested = _NESTED.get(kind, ())
    out: dict[str, Any] = {}
    grouped: dict[str, dict[str, Any]] = {}
    for name, value in entity.items():
        if value is None or name == "entityType":
            continue
        for parent, members in nested:
            if name in members:
                grouped.setdefault(parent, {})[members[name]] = value
                break
        else:
            out[renames.get(name) or _COMMON.get(name) or name] = value
    for parent, members in grouped.items():
        # An entity may already carry a field of that name (evidence is attacker-made):
        # merged when it is an object, else replaced by the documented fields.
        given = out.get(parent)
        out[parent] = {**given, **members} if isinstance(given, dict) else members
    if kind == "device":
        device_id = identifier(out.get("mdeDeviceId"))
        for name, value in (devices.get(device_id, {}) if device_id is not None else {}).items():
            out.setdefault(name, value)
    return out
