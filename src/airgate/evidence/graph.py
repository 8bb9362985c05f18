"""Entities of an investigation: Graph subtypes, identity keys, readable names, device groups.

Shared by every evidence format (airgate.evidence): native, Microsoft Graph, Defender XDR.
Identity keys are a contract: the queue deduplicates on them, and docs/evidence.md
documents every form. Change them only with a migration.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from airgate.catalog import DEVICE_SIDE_TYPES, GRAPH_ENTITY_TYPES

GRAPH_PREFIX = "#microsoft.graph.security."
ALERT_ODATA_TYPE = GRAPH_PREFIX + "alert"
INCIDENT_ODATA_TYPE = GRAPH_PREFIX + "incident"
# The legacy /security/alerts API (microsoft.graph.alert): entity states, no evidence list.
LEGACY_ALERT_ODATA_TYPE = "#microsoft.graph.alert"
LEGACY_ALERT_FIELDS = ("vendorInformation", "hostStates", "fileStates", "userStates",
                       "processes", "networkConnections", "registryKeyStates", "malwareStates",
                       "cloudAppStates")

# "#microsoft.graph.security.deviceEvidence" -> "device": one dict lookup per item.
SUBTYPES: Mapping[str, str] = {f"{GRAPH_PREFIX}{t}Evidence": t for t in GRAPH_ENTITY_TYPES}

# Fields that change between two sightings of the same entity: left out of the
# hashed fallback key so that the same entity in two alerts gets the same key.
VOLATILE_FIELDS = frozenset(
    {"createdDateTime", "verdict", "remediationStatus", "remediationStatusDetails",
     "roles", "detailedRoles", "tags", "detectionStatus", "firstSeenDateTime"}
)

Fields = Mapping[str, Any]


def derive_entity_type(odata_type: str) -> str:
    """The entity type for an ``@odata.type`` not in SUBTYPES: its last segment minus "Evidence"."""
    name = odata_type.rsplit(".", 1)[-1].lstrip("#")
    if name.endswith("Evidence") and len(name) > len("Evidence"):
        name = name[: -len("Evidence")]
    return name


def _text(value: object) -> str | None:
    """A usable identifier: a non-blank string (verbatim) or an integer, else None."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _sub(fields: Fields, name: str) -> Fields:
    value = fields.get(name)
    return value if isinstance(value, dict) else {}


def _lower(value: object) -> str | None:
    text = _text(value)
    return text.lower() if text is not None else None


def _at_device(part: str, fields: Fields) -> str:
    device = _text(fields.get("mdeDeviceId"))
    return f"{part}@{device}" if device is not None else part


# ---------------------------------------------------------------- identity keys
def _device_key(f: Fields) -> str | None:
    return _text(f.get("mdeDeviceId")) or _lower(f.get("deviceDnsName"))


def _file_key(f: Fields) -> str | None:
    details = _sub(f, "fileDetails")
    digest = (
        _lower(details.get("sha256")) or _lower(details.get("sha1")) or _lower(details.get("md5"))
    )
    return None if digest is None else _at_device(digest, f)


def _process_key(f: Fields) -> str | None:
    device, pid = _text(f.get("mdeDeviceId")), _text(f.get("processId"))
    if device is None or pid is None:
        return None
    started = _text(f.get("processCreationDateTime")) or _text(f.get("createdDateTime")) or ""
    return f"{device}:{pid}:{started}"


def _registry_path(f: Fields) -> str | None:
    key = _text(f.get("registryKey"))
    if key is None:
        return None
    hive = _text(f.get("registryHive"))
    return f"{hive}\\{key}" if hive is not None else key


def _registry_key_key(f: Fields) -> str | None:
    path = _registry_path(f)
    return None if path is None else _at_device(path, f)


def _registry_value_key(f: Fields) -> str | None:
    path = _registry_path(f)
    if path is None:
        return None
    return _at_device(f"{path}:{_text(f.get('registryValueName')) or ''}", f)


# Accounts whose SID is unique to one account: domain and machine accounts (S-1-5-21-...)
# and Entra-joined accounts (S-1-12-1-...). Every other SID (S-1-5-18 LocalSystem,
# S-1-5-32-544 Administrators, S-1-5-80-... service SIDs) is the same on every host.
_UNIQUE_SID_PREFIXES = ("s-1-5-21-", "s-1-12-1-")
# Account "domains" that name no domain: the same account name under them is a
# different account on every host (lowercased).
_HOST_SCOPED_DOMAINS = frozenset(
    {".", "localhost", "nt authority", "builtin", "nt service", "nt virtual machine",
     "iis apppool", "window manager", "font driver host"}
)


def entra_identity(account: Fields) -> str | None:
    """The account's Entra ID object id, else its UPN lowercased: None for local accounts."""
    return _text(account.get("azureAdUserId")) or _lower(account.get("userPrincipalName"))


def _user_key(f: Fields) -> str | None:
    account = _sub(f, "userAccount") or f
    found = entra_identity(account)
    if found is not None:
        return found
    sid = _text(account.get("userSid"))
    if sid is not None and sid.lower().startswith(_UNIQUE_SID_PREFIXES):
        return sid
    name = _text(account.get("accountName"))
    domain = _text(account.get("domainName"))
    if name is not None and domain is not None and domain.lower() not in _HOST_SCOPED_DOMAINS:
        # CONTOSO\ann, or HOST\adminlocal: the domain (or host) name scopes the account.
        return f"{domain}\\{name}"
    # root, NT AUTHORITY\SYSTEM, a well-known SID: one such account on every host, so
    # the key names the device (docs/evidence.md: the device of the alert when one).
    if name is not None:
        local = f"{domain}\\{name}" if domain is not None else name
    elif sid is not None:
        local = sid
    else:
        return None
    return _at_device(local, f)


def _mailbox_key(f: Fields) -> str | None:
    return (
        _lower(f.get("primaryAddress"))
        or _lower(f.get("upn"))
        or _lower(_sub(f, "userAccount").get("userPrincipalName"))
    )


def _mailbox_configuration_key(f: Fields) -> str | None:
    config_id = _text(f.get("configurationId"))
    if config_id is not None:
        return config_id
    address = _lower(f.get("mailboxPrimaryAddress"))
    kind = _text(f.get("configurationType"))
    if address is None or kind is None:
        return None
    return f"{address}:{kind}"


def _analyzed_message_key(f: Fields) -> str | None:
    message_id = _text(f.get("networkMessageId"))
    if message_id is None:
        return None
    return f"{message_id}:{_lower(f.get('recipientEmailAddress')) or ''}"


def _mail_cluster_key(f: Fields) -> str | None:
    query = _text(f.get("query"))
    if query is not None:
        return query
    by, value = _text(f.get("clusterBy")), _text(f.get("clusterByValue"))
    return f"{by}={value}" if by is not None and value is not None else None


def _named_on_device(*names: str) -> Callable[[Fields], str | None]:
    def key(f: Fields) -> str | None:
        for name in names:
            found = _text(f.get(name))
            if found is not None:
                return _at_device(found, f)
        return None

    return key


def _field(name: str) -> Callable[[Fields], str | None]:
    return lambda f: _text(f.get(name))


# Identifiers that say nothing about which entity this is.
_NOT_IDENTITY = frozenset({"tenantId", "rbacGroupId", "detectorId", "parentProcessId"})
# Known identifiers of Graph types with no dedicated key above, tried first.
_ID_FIELDS = {
    "cloudApplication": ("appId", "instanceId", "displayName"),
    "oauthApplication": ("appId", "objectId", "displayName"),
    "servicePrincipal": ("servicePrincipalObjectId", "appId"),
    "securityGroup": ("securityGroupId", "displayName"),
    "azureResource": ("resourceId",),
    "amazonResource": ("amazonResourceId", "resourceName"),
    "googleCloudResource": ("fullResourceName", "resourceName"),
    "dns": ("domainName",),
    "blob": ("url", "name"),
    "blobContainer": ("url", "name"),
    "sasToken": ("url",),
    "container": ("containerId", "name"),
    "containerImage": ("imageId",),
    "containerRegistry": ("registry",),
    "malware": ("name",),
    "nic": ("macAddress", "ipAddress"),
    "teamsMessage": ("teamsMessageId", "messageId"),
    "submissionMail": ("submissionId", "networkMessageId"),
}


def _generic_key(entity_type: str, f: Fields) -> str | None:
    for name in _ID_FIELDS.get(entity_type, ()):
        found = _text(f.get(name))
        if found is not None:
            return found
    # "id" first, then any "...Id" field, in name order so that field order never matters.
    candidates = sorted(k for k in f if k.endswith("Id") and k not in _NOT_IDENTITY)
    for name in ("id", *candidates):
        found = _text(f.get(name))
        if found is not None:
            return found
    return None


_KEYS: dict[str, Callable[[Fields], str | None]] = {
    "device": _device_key,
    "file": _file_key,
    "process": _process_key,
    "registryKey": _registry_key_key,
    "registryValue": _registry_value_key,
    "mailbox": _mailbox_key,
    "mailboxConfiguration": _mailbox_configuration_key,
    "analyzedMessage": _analyzed_message_key,
    "mailCluster": _mail_cluster_key,
    "url": _field("url"),
    "ip": _field("ipAddress"),
    "user": _user_key,
    "service": _named_on_device("name", "serviceName", "path"),
    "driver": _named_on_device("name", "driverName", "path"),
    "scheduledTask": _named_on_device("name", "taskName", "path"),
}


def fields_digest(fields: Fields) -> str:
    """sha256 of the canonical JSON of the fields, volatile ones left out."""
    stable = {k: v for k, v in fields.items() if k not in VOLATILE_FIELDS}
    canonical = json.dumps(
        stable, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def identity_key(entity_type: str, fields: Fields) -> str:
    """The entity's stable identity (docs/evidence.md); never fails, whatever the fields."""
    make = _KEYS.get(entity_type)
    found = make(fields) if make is not None else _generic_key(entity_type, fields)
    if found is None:
        return f"{entity_type}:fields#{fields_digest(fields)}"
    return f"{entity_type}:{found}"


# ---------------------------------------------------------------- readable names
def _message_name(f: Fields) -> str | None:
    sender = (
        _text(_sub(f, "p1Sender").get("emailAddress"))
        or _text(_sub(f, "p2Sender").get("emailAddress"))
        or _text(f.get("senderEmailAddress"))
    )
    subject = f.get("subject")
    subject = subject if isinstance(subject, str) else None
    if sender is None and subject is None:
        return None
    return f"{sender or '(unknown sender)'}: {subject if subject is not None else '(no subject)'}"


def _process_name(f: Fields) -> str | None:
    image = _text(_sub(f, "imageFile").get("fileName"))
    pid = _text(f.get("processId"))
    if image is None:
        return f"pid {pid}" if pid is not None else None
    return f"{image} (pid {pid})" if pid is not None else image


def _cluster_name(f: Fields) -> str | None:
    by, value = _text(f.get("clusterBy")), _text(f.get("clusterByValue"))
    if by is None or value is None:
        return _text(f.get("query"))
    count = _text(f.get("emailCount"))
    return f"{by}={value}" + (f" ({count} emails)" if count is not None else "")


def _config_name(f: Fields) -> str | None:
    kind, address = _text(f.get("configurationType")), _text(f.get("mailboxPrimaryAddress"))
    if kind is None or address is None:
        return kind or address
    return f"{kind} of {address}"


def _user_name(f: Fields) -> str | None:
    account = _sub(f, "userAccount") or f
    upn = _text(account.get("userPrincipalName"))
    if upn is not None:
        return upn
    name = _text(account.get("accountName"))
    domain = _text(account.get("domainName"))
    if name is not None:
        return f"{domain}\\{name}" if domain is not None else name
    return _text(account.get("displayName"))


def _first(*names: str) -> Callable[[Fields], str | None]:
    def name(f: Fields) -> str | None:
        for field_name in names:
            found = _text(f.get(field_name))
            if found is not None:
                return found
        return None

    return name


_NAMES: dict[str, Callable[[Fields], str | None]] = {
    "device": _first("deviceDnsName", "mdeDeviceId"),
    "file": lambda f: _text(_sub(f, "fileDetails").get("fileName")),
    "process": _process_name,
    "registryKey": _registry_path,
    "registryValue": lambda f: (
        None if _registry_path(f) is None
        else f"{_registry_path(f)}\\{_text(f.get('registryValueName')) or ''}"
    ),
    "mailbox": _first("primaryAddress", "upn", "displayName"),
    "mailboxConfiguration": _config_name,
    "analyzedMessage": _message_name,
    "mailCluster": _cluster_name,
    "url": _first("url"),
    "ip": _first("ipAddress"),
    "user": _user_name,
    "service": _first("name", "serviceName", "displayName", "path"),
    "driver": _first("name", "driverName", "path"),
    "scheduledTask": _first("name", "taskName", "path"),
}
_GENERIC_NAME = _first("displayName", "name", "url", "domainName", "fullResourceName")


def readable_name(entity_type: str, fields: Fields, key: str) -> str:
    """A name a person recognizes (DNS name, file name, sender and subject, UPN, URL...)."""
    make = _NAMES.get(entity_type, _GENERIC_NAME)
    return make(fields) or key.partition(":")[2] or key


# ---------------------------------------------------------------- device groups
def device_groups(items: list[tuple[str, Fields]]) -> dict[str, str]:
    """mdeDeviceId -> rbacGroupName, from the device evidence of one alert or investigation."""
    groups: dict[str, str] = {}
    for entity_type, fields in items:
        if entity_type == "device":
            device, group = _text(fields.get("mdeDeviceId")), fields.get("rbacGroupName")
            if device is not None and isinstance(group, str):
                groups.setdefault(device, group)
    return groups


def device_group_for(entity_type: str, fields: Fields, groups: Mapping[str, str]) -> str | None:
    """The item's own rbacGroupName, else its device's group for device-side evidence."""
    group = fields.get("rbacGroupName")
    if isinstance(group, str):
        return group
    if entity_type in DEVICE_SIDE_TYPES and groups:
        device = _text(fields.get("mdeDeviceId"))
        if device is not None:
            return groups.get(device)
    return None
