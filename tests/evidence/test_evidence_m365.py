"""Microsoft 365 Defender (Defender XDR) API incidents: entities read into Graph's terms."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from airgate.errors import EvidenceError, Finding
from airgate.evidence.reader import load_evidence
from airgate.model import Evidence
from helpers import DATA

SAMPLE = DATA / "evidence" / "m365d-incidents.json"
DEVICE = "3f0b1a6c1d0f4e1b9a3e2c5d7e9f0a1b2c3d4e5f"
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def sample() -> list[Evidence]:
    seen: list[Finding] = []
    items = load_evidence(SAMPLE, on_warning=seen.append)
    assert seen == []
    return items


def named(payload: Any) -> io.BytesIO:
    stream = io.BytesIO(json.dumps(payload, indent=1).encode())
    stream.name = "m365.json"
    return stream


def incident(*entities: dict[str, Any], devices: list[Any] | None = None) -> dict[str, Any]:
    return {"incidentId": 42, "incidentName": "x",
            "alerts": [{"alertId": "al-1", "incidentId": 42, "devices": devices or [],
                        "entities": list(entities)}]}


def test_entity_types_verdicts_keys_and_names() -> None:
    assert [(e.investigation, e.entity_type, e.verdict, e.key, e.name) for e in sample()] == [
        ("924518", "mailbox", "suspicious", "mailbox:megan@contoso.com", "Megan@contoso.com"),
        ("924518", "analyzedMessage", "malicious",
         "analyzedMessage:5e9a1f0c-0c41-4b6a-9f3e-08db0e5b6c7d:megan@contoso.com",
         "billing@fabrikam-pay.example: Your invoice is ready"),
        ("924518", "mailCluster", "malicious",
         "mailCluster:fields#fe797c3e26181b136d41b39904b0d3503d8fb674193b55d10758059f21c5e9bf",
         "fields#fe797c3e26181b136d41b39904b0d3503d8fb674193b55d10758059f21c5e9bf"),
        ("924518", "url", "malicious", "url:http://downloads.fabrikam-pay.example/invoice",
         "http://downloads.fabrikam-pay.example/invoice"),
        ("924518", "user", "suspicious", "user:6a3c1e2f-8b7d-4c5e-9f0a-1b2c3d4e5f60",
         "Megan@contoso.com"),
        ("924521", "device", "suspicious", f"device:{DEVICE}", "ws-0042.contoso.com"),
        ("924521", "file", "malicious", f"file:{SHA256}@{DEVICE}", "mimikatz.exe"),
        ("924521", "process", "malicious", f"process:{DEVICE}:24348:2023-02-14T09:12:38.52Z",
         "mimikatz.exe (pid 24348)"),
        ("924521", "ip", "suspicious", "ip:203.0.113.7", "203.0.113.7"),
        ("924521", "registryKey", "suspicious",
         f"registryKey:HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"
         f"\\Winlogon@{DEVICE}",
         "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon"),
        ("924521", "securityGroup", "unknown",
         "securityGroup:301c47c8-e15f-4059-ab09-e2ba9ffd372b", "Network Configuration Operators"),
    ]


def test_fields_get_graph_names_and_nulls_are_dropped() -> None:
    by_type = {e.entity_type: e for e in sample()}
    assert by_type["file"].fields["fileDetails"] == {
        "sha1": "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
        "sha256": SHA256.upper(), "fileName": "mimikatz.exe",
        "filePath": "C:\\Users\\alex\\Downloads"}
    assert by_type["process"].fields["userAccount"] == {"accountName": "alex",
                                                         "domainName": "CONTOSO"}
    assert by_type["process"].fields["parentProcessCreationDateTime"] == "2023-02-14T09:10:32.86Z"
    assert by_type["user"].fields["userAccount"]["azureAdUserId"] == (
        "6a3c1e2f-8b7d-4c5e-9f0a-1b2c3d4e5f60")
    assert by_type["analyzedMessage"].fields["p2Sender"] == {
        "emailAddress": "billing@fabrikam-pay.example"}
    assert by_type["mailbox"].fields["primaryAddress"] == "Megan@contoso.com"
    assert by_type["ip"].fields == {"createdDateTime": "2023-02-14T09:13:40.01Z",
                                    "verdict": "Suspicious", "remediationStatus": "None",
                                    "ipAddress": "203.0.113.7"}
    assert all(None not in e.fields.values() for e in by_type.values())
    assert {e.source for e in by_type.values()} == {"m365d"}


def test_devices_give_machines_their_fields_and_device_side_items_their_group() -> None:
    groups = {(e.investigation, e.entity_type): e.device_group for e in sample()}
    assert groups[("924521", "device")] == "Workstations"
    assert groups[("924521", "file")] == "Workstations"
    assert groups[("924521", "process")] == "Workstations"
    assert groups[("924521", "ip")] is None
    (device,) = [e for e in sample() if e.entity_type == "device"]
    assert device.fields["deviceDnsName"] == "ws-0042.contoso.com"


def test_the_same_file_gets_the_same_key_from_graph_and_from_defender() -> None:
    graph_items = load_evidence(DATA / "evidence" / "graph-incidents.json")
    graph_file = next(e for e in graph_items if e.entity_type == "file")
    defender_file = next(e for e in sample() if e.entity_type == "file")
    assert graph_file.key == defender_file.key


def test_a_registry_entity_naming_a_value_is_a_registry_value() -> None:
    (found,) = load_evidence(named(incident({
        "entityType": "Registry", "verdict": "Malicious", "registryHive": "HKEY_CURRENT_USER",
        "registryKey": "Software\\Run", "registryValueName": "updater", "deviceId": "d1"})))
    assert (found.entity_type, found.key) == (
        "registryValue", "registryValue:HKEY_CURRENT_USER\\Software\\Run:updater@d1")


def test_unknown_entity_type_is_kept_and_reported() -> None:
    seen: list[Finding] = []
    found = load_evidence(named(incident(
        {"entityType": "CloudApplication", "verdict": "Suspicious", "appId": 11161},
        {"entityType": "QuantumWidget", "widgetId": "w-1"})), on_warning=seen.append)
    assert [(e.entity_type, e.key, e.verdict) for e in found] == [
        ("cloudApplication", "cloudApplication:11161", "suspicious"),
        ("quantumWidget", "quantumWidget:w-1", "unknown"),
    ]
    assert [(f.code, f.location.path) for f in seen] == [
        ("unknown-evidence-type", ("alerts", 0, "entities", 1))]
    assert "'QuantumWidget'" in seen[0].message


def test_an_alert_on_its_own_belongs_to_its_incident() -> None:
    alert = incident({"entityType": "Ip", "ipAddress": "198.51.100.4"})["alerts"][0]
    (found,) = load_evidence(named(alert))
    assert found.investigation == "42"


@pytest.mark.parametrize(("payload", "message"), [
    (incident({"entityType": "Ip", "verdict": "dunno"}),
     r"unknown verdict 'dunno'.* \(at \$\.alerts\[0\]\.entities\[0\]\.verdict\)"),
    (incident({"ipAddress": "1.2.3.4"}),
     r"entity has no 'entityType' string \(at \$\.alerts\[0\]\.entities\[0\]\)"),
    ({"incidentId": True, "alerts": []},
     r"Microsoft 365 Defender incident: 'incidentId' must be a number"),
    ({"incidentId": 1, "alerts": {"alertId": "x"}}, r"'alerts' must be a list, got an object"),
    ({"incidentId": 1, "alerts": [{"alertId": "x", "entities": "none"}]},
     r"'entities' must be a list, got a string \(at \$\.alerts\[0\]\.entities\)"),
])
def test_malformed_defender_incidents_are_located(payload: Any, message: str) -> None:
    with pytest.raises(EvidenceError, match=message):
        load_evidence(named(payload))


@pytest.mark.parametrize("given", ["C:\\evil", 7, ["x"], {"fileName": "other.exe", "extra": 1}])
def test_an_entity_field_named_like_a_graph_group_never_breaks_reading(given: object) -> None:
    (found,) = load_evidence(named(incident(
        {"entityType": "File", "fileDetails": given, "sha256": "AB", "fileName": "a.exe"})))
    details = found.fields["fileDetails"]
    assert (details["sha256"], details["fileName"]) == ("AB", "a.exe")
    assert found.key == "file:ab"
    assert details.get("extra") == (1 if isinstance(given, dict) else None)
