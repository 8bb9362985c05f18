"""Parsed evidence documents -> Evidence records: native investigations, Graph alerts and
incidents, Microsoft 365 Defender incidents.

airgate.evidence reads bytes and parses them; this module tells what kind of document
was parsed and hands it to its reader (airgate.evidence.alerts for alerts and
incidents), says what a document that gave no evidence holds, and reads native
investigations itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airgate.errors import Finding
from airgate.evidence import alerts, context, graph, m365
from airgate.evidence.native import NativeChecker
from airgate.evidence.where import Where, kind_of
from airgate.model import Evidence, normalize_verdict
from airgate.policy.yamlsrc import Path

Warn = Callable[[Finding], None]

__all__ = ["Where", "describe", "kind_of", "may_go_on", "to_evidence"]

# The paths of native evidence items, shared (tuples are immutable): one less tuple per item.
_MAX_PATHS = 1024
_ITEM_PATHS = tuple(("evidence", index) for index in range(_MAX_PATHS))
_NATIVE = NativeChecker()


# ---------------------------------------------------------------- documents
# Lists, not generators, below: one alert or investigation is small, and each generator
# layer costs on the per-line path of large streams.
def to_evidence(data: Any, where: Where, warn: Warn) -> list[Evidence]:
    if type(data) is not dict:
        raise where.error(_not_an_object(data), (), "shape")
    if "kind" in data or "apiVersion" in data:
        return _native(data, where)
    value = data.get("value")
    if type(value) is list and "evidence" not in data:
        out: list[Evidence] = []
        for index, entry in enumerate(value):
            out += _entry(entry, ("value", index), where, warn)
        return out
    shape = _shape(data)
    if shape is None:
        raise where.error(
            "not evidence airgate knows: expected 'kind: Investigation' (native format),"
            " a Microsoft Graph alert, incident or list ('value'), or a Microsoft 365 Defender"
            " incident ('incidentId', 'alerts')", (), "unknown-format"
        )
    return _READERS[shape](data, (), where, warn)


def _shape(data: dict[str, Any]) -> str | None:
    """Which reader a single (not listed) object goes to; None when none fits."""
    if _is_legacy_alert(data):
        return "legacy"
    if _is_incident(data):
        return "incident"
    if m365.is_incident(data):
        return "m365-incident"
    if m365.is_alert(data):
        return "m365-alert"
    return "alert" if _looks_like_alert(data) else None


def _entry(entry: Any, path: Path, where: Where, warn: Warn) -> list[Evidence]:
    """An item of a list response: an alert (as before incidents were read), or an incident."""
    if type(entry) is dict and "evidence" not in entry:
        if _is_legacy_alert(entry):
            return []
        if _is_incident(entry):
            return alerts.read_incident(entry, path, where, warn)
        if m365.is_incident(entry):
            return alerts.read_m365_incident(entry, path, where, warn)
        if m365.is_alert(entry):
            return alerts.read_m365_alert(entry, path, where, warn)
    return alerts.read_alert(entry, path, where, warn)


def _is_legacy_alert(data: dict[str, Any]) -> bool:
    if "evidence" in data:
        return False
    if data.get("@odata.type") == graph.LEGACY_ALERT_ODATA_TYPE:
        return True
    return any(name in data for name in graph.LEGACY_ALERT_FIELDS)


def _is_incident(data: dict[str, Any]) -> bool:
    if "evidence" in data:
        return False
    if data.get("@odata.type") == graph.INCIDENT_ODATA_TYPE:
        return True
    odata_context = data.get("@odata.context")
    if type(odata_context) is str and "security/incidents" in odata_context.lower():
        return True
    return "id" in data and ("alerts" in data or "incidentWebUrl" in data)


def _looks_like_alert(data: dict[str, Any]) -> bool:
    if "@odata.context" in data or data.get("@odata.type") == graph.ALERT_ODATA_TYPE:
        return True
    evidence = data.get("evidence")
    if type(evidence) is not list:
        return "evidence" in data  # a malformed alert: say what is wrong with its evidence
    # Native items say "type"; a document of those that lacks "kind" is native gone wrong.
    first = evidence[0] if evidence else None
    return not (type(first) is dict and "type" in first and "@odata.type" not in first)


def _native(data: dict[str, Any], where: Where) -> list[Evidence]:
    kind = data.get("kind")
    if kind != "Investigation":
        if "kind" not in data:
            raise where.error("missing 'kind' (expected Investigation)", (), "schema")
        raise where.error(f"unknown kind {kind!r} (expected Investigation)", ("kind",), "schema")
    if not _NATIVE.quick_valid(data):
        problem = _NATIVE.first_error(data)
        if problem is not None:
            message, path, at_key = problem
            raise where.error(message, path, "schema", key=at_key)
    investigation: str = data["id"]
    source: str = data.get("source", "automatedInvestigation")
    items = data["evidence"]
    context.annotate([(item["type"], item["fields"]) for item in items])
    groups = graph.device_groups([(item["type"], item["fields"]) for item in items])
    out: list[Evidence] = []
    for index, item in enumerate(items):
        verdict = alerts.VERDICTS.get(item["verdict"]) or normalize_verdict(item["verdict"])
        path = _ITEM_PATHS[index] if index < _MAX_PATHS else ("evidence", index)
        if verdict is None:
            raise where.error(alerts.bad_verdict(item["verdict"]), (*path, "verdict"), "verdict")
        entity_type: str = item["type"]
        fields = item["fields"]
        key = graph.identity_key(entity_type, fields)
        out.append(Evidence(
            investigation, entity_type, verdict, key,
            item.get("name") or graph.readable_name(entity_type, fields, key), fields,
            "native", source, None, graph.device_group_for(entity_type, fields, groups),
            where.item(path),
        ))
    return out


def _legacy(_data: dict[str, Any], _base: Path, _where: Where, _warn: Warn) -> list[Evidence]:
    return []  # no evidence to read: the reader's no-evidence warning names the shape


_READERS: dict[str, Callable[[dict[str, Any], Path, Where, Warn], list[Evidence]]] = {
    "legacy": _legacy,
    "incident": alerts.read_incident,
    "m365-incident": alerts.read_m365_incident,
    "m365-alert": alerts.read_m365_alert,
    "alert": alerts.read_alert,
}


# ---------------------------------------------------------------- what a document is
_LEGACY = ("legacy Microsoft Graph security alert (the /security/alerts API: hostStates,"
           " fileStates... and no 'evidence' list; airgate reads /security/alerts_v2 alerts and"
           " /security/incidents?$expand=alerts)")


def _label(data: object) -> str:
    """What one object is, as a noun phrase without article."""
    if type(data) is not dict:
        return kind_of(data).removeprefix("an ").removeprefix("a ")
    if "kind" in data or "apiVersion" in data:
        return "airgate Investigation with no evidence items"
    if _is_legacy_alert(data):
        return _LEGACY
    if _is_incident(data):
        if "alerts" not in data:
            return "Microsoft Graph incident without its alerts (request it with $expand=alerts)"
        return "Microsoft Graph incident whose alerts have no evidence"
    if m365.is_incident(data):
        return "Microsoft 365 Defender incident whose alerts have no entities"
    if m365.is_alert(data):
        return "Microsoft 365 Defender alert with no entities"
    if "evidence" not in data:
        return "Microsoft Graph alert without an 'evidence' list"
    return "Microsoft Graph alert with no evidence"


def describe(data: object) -> str:
    """What a document that gave no evidence holds, for the warning that says so."""
    value = data.get("value") if type(data) is dict else None
    if type(data) is not dict or type(value) is not list or "evidence" in data:
        label = _label(data)
        return ("an " if label[:1] in "aeiou" else "a ") + label
    if not value:
        return "a list response ('value') with no items"
    counts: dict[str, int] = {}
    for entry in value:
        label = _label(entry)
        counts[label] = counts.get(label, 0) + 1
    parts = [label if count == 1 else f"{label} (x{count})" for label, count in counts.items()]
    items = "1 item" if len(value) == 1 else f"{len(value)} items"
    return f"a list response ('value') of {items}: " + "; ".join(parts)


def may_go_on(data: object) -> bool:
    """True for a document whose investigation may go on in the next NDJSON lines (a native
    investigation, a Graph alert): one such line without evidence is no mistake."""
    if type(data) is not dict or (type(data.get("value")) is list and "evidence" not in data):
        return False
    return "kind" in data or "apiVersion" in data or _shape(data) == "alert"


def _not_an_object(data: object) -> str:
    expected = ("expected an object (an airgate Investigation, a Graph alert, incident or list"
                " response, or a Microsoft 365 Defender incident), got " + kind_of(data))
    if type(data) is not list or not data:
        return expected
    first = data[0]
    if type(first) is dict:
        wrapped = [name for name, inner in first.items()
                   if type(inner) is dict and (_shape(inner) is not None or "evidence" in inner)]
        if wrapped:
            name = wrapped[0]
            return (f"{expected} of records that each hold an alert or incident under"
                    f" {name!r} (an export of another tool): give airgate a list response"
                    f" instead, e.g. jq '{{value: [.[].{name}]}}'")
        if _shape(first) is not None or "evidence" in first:
            return (f"{expected} of alerts or incidents: wrap them as a list response,"
                    " {\"value\": [...]}")
    return expected
