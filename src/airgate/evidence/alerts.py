"""Alerts and incidents -> Evidence records: Microsoft Graph alerts (v2) and incidents, and
the incidents and alerts of the Microsoft 365 Defender (Defender XDR) API.

An incident is one investigation holding the evidence of all its alerts
(docs/evidence.md says why); an alert on its own is one investigation, as it
always was. Structure is checked by hand, with located errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airgate.errors import Finding
from airgate.evidence import context, graph, m365
from airgate.evidence.where import Where, kind_of
from airgate.model import Evidence, normalize_verdict
from airgate.policy.yamlsrc import Path

Warn = Callable[[Finding], None]

# The spellings seen in practice, looked up before the general normalization.
VERDICTS = {
    spelling: normalize_verdict(spelling)
    for spelling in ("malicious", "suspicious", "noThreatsFound", "unknown", "unknownFutureValue",
                     "Malicious", "Suspicious", "No threats found", "Clean", "Unknown")
}


# Lists, not generators, below: one alert or incident is small, and each generator layer
# costs on the per-line path of large streams.
def bad_verdict(value: object) -> str:
    return (
        f"unknown verdict {value!r} (expected malicious, suspicious, noThreatsFound, unknown,"
        " or Malicious, Suspicious, No threats found, Clean)"
    )


def read_verdict(raw: object, path: Path, where: Where) -> str:
    if raw is None:
        return "unknown"
    found = (VERDICTS.get(raw) if type(raw) is str else None) or normalize_verdict(raw)
    if found is None:
        raise where.error(bad_verdict(raw), (*path, "verdict"), "verdict")
    return found


# One item read from an alert, not yet a record: entity type, fields, verdict, odata type, path.
_Item = tuple[str, dict[str, Any], str, "str | None", Path]


def _records(investigation: str, parsed: list[_Item], where: Where, source: str,
             groups: dict[str, str] | None = None) -> list[Evidence]:
    """The records of one investigation; device groups come from its own device evidence."""
    found = graph.device_groups([(t, f) for t, f, _, _, _ in parsed])
    for device, group in (groups or {}).items():
        found.setdefault(device, group)
    out: list[Evidence] = []
    for entity_type, fields, verdict, odata, path in parsed:
        key = graph.identity_key(entity_type, fields)
        out.append(Evidence(
            investigation, entity_type, verdict, key,
            graph.readable_name(entity_type, fields, key), fields, source,
            "automatedInvestigation", odata, graph.device_group_for(entity_type, fields, found),
            where.item(path),
        ))
    return out


def read_alert(alert: Any, base: Path, where: Where, warn: Warn) -> list[Evidence]:
    investigation, parsed = _alert_items(alert, base, where, warn)
    return _records(investigation, parsed, where, "graph")


def _alert_items(alert: Any, base: Path, where: Where, warn: Warn) -> tuple[str, list[_Item]]:
    # Structural checks by hand, not jsonschema: this is the per-line path of large streams.
    if type(alert) is not dict:
        raise where.error(f"expected a Graph alert object, got {kind_of(alert)}", base, "shape")
    investigation = alert.get("id")
    if type(investigation) is not str or not investigation:
        wrapped = next((name for name, inner in alert.items()
                        if type(inner) is dict and "id" in inner and "evidence" in inner), None)
        hint = (f"; it holds an alert under {wrapped!r} (a record of another tool): give"
                " the alert itself" if wrapped is not None else "")
        raise where.error("Graph alert has no 'id' string" + hint,
                          (*base, "id") if "id" in alert else base, "shape")
    items = alert.get("evidence", [])
    if type(items) is not list:
        raise where.error(f"'evidence' must be a list, got {kind_of(items)}", (*base, "evidence"),
                          "shape")
    parsed: list[_Item] = []
    for index, item in enumerate(items):
        path = (*base, "evidence", index)
        if type(item) is not dict:
            raise where.error(
                f"evidence item must be an object, got {kind_of(item)}", path, "shape"
            )
        odata = item.get("@odata.type")
        if type(odata) is not str:
            if "@odata.type" not in item:
                raise where.error("evidence item has no '@odata.type'", path, "shape")
            raise where.error("'@odata.type' must be a string", (*path, "@odata.type"), "shape")
        entity_type = graph.SUBTYPES.get(odata)
        if entity_type is None:
            entity_type = graph.derive_entity_type(odata)
            if not entity_type:
                raise where.error(f"unusable '@odata.type' {odata!r}", (*path, "@odata.type"),
                                  "shape")
            warn(Finding(
                "warning", "unknown-evidence-type",
                f"unknown Graph evidence type {odata!r}, kept as entity type {entity_type!r}",
                where.exact(path),
            ))
        verdict = read_verdict(item.get("verdict"), path, where)
        # The parsed item is ours alone: reuse it as the fields, minus its type marker.
        del item["@odata.type"]
        parsed.append((entity_type, item, verdict, odata, path))
    context.annotate([(t, f) for t, f, _, _, _ in parsed], alert)
    return investigation, parsed


def _list_field(data: dict[str, Any], name: str, base: Path, where: Where) -> list[Any]:
    found = data.get(name, [])
    if type(found) is not list:
        raise where.error(f"'{name}' must be a list, got {kind_of(found)}", (*base, name),
                          "shape")
    return found


def read_incident(incident: dict[str, Any], base: Path, where: Where, warn: Warn) -> list[Evidence]:
    """A Graph incident (``/security/incidents?$expand=alerts``): one investigation, the
    incident, holding the evidence of all its alerts (docs/evidence.md says why)."""
    investigation = incident.get("id")
    if type(investigation) is not str or not investigation:
        raise where.error("Graph incident has no 'id' string",
                          (*base, "id") if "id" in incident else base, "shape")
    parsed: list[_Item] = []
    for index, alert in enumerate(_list_field(incident, "alerts", base, where)):
        parsed += _alert_items(alert, (*base, "alerts", index), where, warn)[1]
    # What one alert could not tell (a message of another alert listing the URL, the one
    # device of the incident) comes from the whole incident.
    context.annotate([(t, f) for t, f, _, _, _ in parsed])
    return _records(investigation, parsed, where, "graph")


def read_m365_incident(incident: dict[str, Any], base: Path, where: Where,
                   warn: Warn) -> list[Evidence]:
    """A Defender XDR API incident: one investigation, the incident, as for Graph incidents."""
    investigation = m365.identifier(incident.get("incidentId"))
    if investigation is None:
        raise where.error("Microsoft 365 Defender incident: 'incidentId' must be a number or a"
                          " non-empty string", (*base, "incidentId"), "shape")
    parsed: list[_Item] = []
    groups: dict[str, str] = {}
    for index, alert in enumerate(_list_field(incident, "alerts", base, where)):
        path = (*base, "alerts", index)
        if type(alert) is not dict:
            raise where.error(f"expected a Microsoft 365 Defender alert object, got"
                              f" {kind_of(alert)}", path, "shape")
        parsed += _m365_entities(alert, path, where, warn, groups)
    context.annotate([(t, f) for t, f, _, _, _ in parsed])
    return _records(investigation, parsed, where, "m365d", groups)


def read_m365_alert(alert: dict[str, Any], base: Path, where: Where, warn: Warn) -> list[Evidence]:
    """A Defender XDR API alert on its own: the investigation is its incident, as when it
    comes inside one; its own id only when it names no incident."""
    investigation = m365.identifier(alert.get("incidentId")) or m365.identifier(
        alert.get("alertId"))
    if investigation is None:
        raise where.error("Microsoft 365 Defender alert: 'alertId' must be a non-empty string",
                          (*base, "alertId"), "shape")
    groups: dict[str, str] = {}
    parsed = _m365_entities(alert, base, where, warn, groups)
    return _records(investigation, parsed, where, "m365d", groups)


def _m365_entities(alert: dict[str, Any], base: Path, where: Where, warn: Warn,
                   groups: dict[str, str]) -> list[_Item]:
    devices = m365.device_info(alert.get("devices"))
    for device, info in devices.items():
        if isinstance(info.get("rbacGroupName"), str):
            groups.setdefault(device, info["rbacGroupName"])
    parsed: list[_Item] = []
    for index, entity in enumerate(_list_field(alert, "entities", base, where)):
        path = (*base, "entities", index)
        if type(entity) is not dict:
            raise where.error(f"entity must be an object, got {kind_of(entity)}", path, "shape")
        raw = entity.get("entityType")
        if type(raw) is not str or not raw.strip():
            raise where.error("entity has no 'entityType' string",
                              (*path, "entityType") if "entityType" in entity else path, "shape")
        entity_type, known = m365.entity_type(raw, entity)
        if not known:
            warn(Finding(
                "warning", "unknown-evidence-type",
                f"unknown Microsoft 365 Defender entity type {raw!r}, kept as entity type"
                f" {entity_type!r}", where.exact(path),
            ))
        verdict = read_verdict(entity.get("verdict"), path, where)
        parsed.append((entity_type, m365.fields(entity_type, entity, devices), verdict, None,
                       path))
    context.annotate([(t, f) for t, f, _, _, _ in parsed], alert)
    return parsed
