"""What one evidence item learns from the rest of its alert or investigation.

Rules see one item's fields at a time, yet two facts that policies need live
elsewhere (docs/evidence.md, "Fields airgate adds"):

- where a URL came from: the alert's ``serviceSource`` and ``detectionSource``,
  and the analyzed messages whose ``urls`` list it (``networkMessageIds``), so
  that email rules act on URLs from email and not on a URL an endpoint alert saw;
- the device of a local account (``root``, ``NT AUTHORITY\\SYSTEM``): the one
  device of its alert or investigation, so that its identity key names the host.

They are written into the item's fields, under the names above, only where the
item does not give them itself: what a producer states wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airgate.evidence.graph import entra_identity

ALERT_SOURCE_FIELDS = ("serviceSource", "detectionSource")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def annotate(items: Sequence[tuple[str, dict[str, Any]]],
             alert: Mapping[str, Any] | None = None) -> None:
    """Add the derived fields to the url and user items of one alert or investigation.

    ``alert`` is the Graph alert the items came from (None for native evidence).
    """
    urls = [fields for entity_type, fields in items if entity_type == "url"]
    users = [fields for entity_type, fields in items if entity_type == "user"]
    if urls:
        _annotate_urls(urls, items, alert)
    if users:
        _annotate_users(users, items)


def _annotate_urls(urls: list[dict[str, Any]], items: Sequence[tuple[str, dict[str, Any]]],
                   alert: Mapping[str, Any] | None) -> None:
    messages: dict[str, list[str]] = {}  # url -> networkMessageIds of the messages listing it
    for entity_type, fields in items:
        if entity_type != "analyzedMessage":
            continue
        message_id, listed = _text(fields.get("networkMessageId")), fields.get("urls")
        if message_id is None or not isinstance(listed, list):
            continue
        for url in listed:
            if isinstance(url, str):
                ids = messages.setdefault(url.strip(), [])
                if message_id not in ids:
                    ids.append(message_id)
    for fields in urls:
        url = _text(fields.get("url"))
        if url is None:
            continue  # nothing to block; its hashed identity key stays as it was
        if alert is not None:
            for name in ALERT_SOURCE_FIELDS:
                value = _text(alert.get(name))
                if value is not None and name not in fields:
                    fields[name] = value
        found = messages.get(url.strip())
        if found and "networkMessageIds" not in fields:
            fields["networkMessageIds"] = list(found)


def _annotate_users(users: list[dict[str, Any]],
                    items: Sequence[tuple[str, dict[str, Any]]]) -> None:
    devices = {
        device for entity_type, fields in items if entity_type == "device"
        for device in [_text(fields.get("mdeDeviceId"))] if device is not None
    }
    if len(devices) != 1:
        return  # no device, or several: which one the account lives on is unknown
    [device] = devices
    for fields in users:
        account = fields.get("userAccount")
        account = account if isinstance(account, dict) and account else fields
        if entra_identity(account) is None and "mdeDeviceId" not in fields:
            fields["mdeDeviceId"] = device
