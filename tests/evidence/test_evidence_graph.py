"""Graph evidence -> Evidence: entity types, identity keys, names, device groups, warnings."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from airgate.catalog import GRAPH_ENTITY_TYPES
from airgate.errors import Finding
from airgate.evidence import graph
from airgate.evidence.reader import iter_evidence, load_evidence
from airgate.model import Evidence
from helpers import ROOT

P = "#microsoft.graph.security."
EXAMPLES = ROOT / "examples"


def alert(*items: dict[str, Any], alert_id: str = "alert-1") -> list[Evidence]:
    payload = json.dumps({"id": alert_id, "evidence": list(items)}, indent=2)
    return list(iter_evidence(io.BytesIO(payload.encode())))


def item(subtype: str, **fields: Any) -> dict[str, Any]:
    return {"@odata.type": f"{P}{subtype}Evidence", **fields}


@pytest.mark.parametrize("entity_type", GRAPH_ENTITY_TYPES)
def test_every_graph_subtype_maps_to_its_entity_type(entity_type: str) -> None:
    seen: list[Finding] = []
    payload = {"id": "a", "evidence": [item(entity_type, verdict="Suspicious")]}
    (found,) = iter_evidence(io.BytesIO(json.dumps(payload).encode()), on_warning=seen.append)
    assert (found.entity_type, found.verdict, seen) == (entity_type, "suspicious", [])
    assert found.odata_type == f"{P}{entity_type}Evidence"


def test_sample_alert_mapping() -> None:
    items = load_evidence(EXAMPLES / "graph-alert.json")
    raw = json.loads((EXAMPLES / "graph-alert.json").read_text(encoding="utf-8"))["evidence"]
    for evidence, original in zip(items, raw, strict=True):
        assert evidence.fields == {k: v for k, v in original.items() if k != "@odata.type"}
        assert evidence.action_source == "automatedInvestigation"
        assert evidence.investigation == "da637578995287051192_756343937"
    assert [(e.key, e.name, e.device_group) for e in items] == [
        ("device:73e7e2de709dff64ef64b1d0c30e67fab63279db", "tempDns", "UnassignedGroup"),
        ("file:8963a19fb992ad9a76576c5638fd68292cffb9aaac29eb8285f9abf6196a7dec"
         "@73e7e2de709dff64ef64b1d0c30e67fab63279db", "MsSense.exe", "UnassignedGroup"),
        ("process:73e7e2de709dff64ef64b1d0c30e67fab63279db:4780:2021-08-12T12:43:19.0772577Z",
         "MsSense.exe (pid 4780)", "UnassignedGroup"),
        ("registryKey:HKEY_LOCAL_MACHINE\\SYSTEM\\CONTROLSET001\\CONTROL\\WMI\\AUTOLOGGER"
         "\\SENSEAUDITLOGGER", "HKEY_LOCAL_MACHINE\\SYSTEM\\CONTROLSET001\\CONTROL\\WMI"
         "\\AUTOLOGGER\\SENSEAUDITLOGGER", None),  # no mdeDeviceId on it: no device group
    ]


def test_unknown_subtype_is_kept_and_reported_once_per_item() -> None:
    seen: list[Finding] = []
    payload = {"id": "a", "evidence": [
        item("quantumWidget", verdict="malicious", widgetId="w-1"),
        item("quantumWidget", verdict="suspicious", widgetId="w-2"),
        {"@odata.type": "#microsoft.graph.somethingElse", "verdict": "unknown"},
        item("url", url="https://x.example"),
    ]}
    found = list(iter_evidence(io.BytesIO(json.dumps(payload, indent=1).encode()),
                               on_warning=seen.append))
    assert [(e.entity_type, e.key, e.verdict) for e in found] == [
        ("quantumWidget", "quantumWidget:w-1", "malicious"),
        ("quantumWidget", "quantumWidget:w-2", "suspicious"),
        ("somethingElse", f"somethingElse:fields#{graph.fields_digest({})}", "unknown"),
        ("url", "url:https://x.example", "unknown"),
    ]
    assert [(f.severity, f.code) for f in seen] == [("warning", "unknown-evidence-type")] * 3
    assert "quantumWidgetEvidence" in seen[0].message
    assert seen[1].location.line == 9 and seen[1].location.path == ("evidence", 1)


KEYS = [
    ("device", {"mdeDeviceId": "ABC", "deviceDnsName": "PC.contoso.com"}, "device:ABC"),
    ("device", {"deviceDnsName": "PC-1.Contoso.COM"}, "device:pc-1.contoso.com"),
    ("file", {"fileDetails": {"sha256": "AA", "sha1": "BB"}, "mdeDeviceId": "d"}, "file:aa@d"),
    ("file", {"fileDetails": {"sha256": None, "sha1": "BB", "md5": "CC"}}, "file:bb"),
    ("file", {"fileDetails": {"md5": "CC"}}, "file:cc"),
    ("process", {"mdeDeviceId": "d", "processId": 42, "processCreationDateTime": "T1",
                 "createdDateTime": "T0"}, "process:d:42:T1"),
    ("process", {"mdeDeviceId": "d", "processId": 42, "createdDateTime": "T0"},
     "process:d:42:T0"),
    ("registryKey", {"registryHive": "HKEY_LOCAL_MACHINE", "registryKey": "SOFTWARE\\Run",
                     "mdeDeviceId": "d"}, "registryKey:HKEY_LOCAL_MACHINE\\SOFTWARE\\Run@d"),
    ("registryValue", {"registryHive": "HKCU", "registryKey": "Run", "registryValueName": "x",
                       "mdeDeviceId": "d"}, "registryValue:HKCU\\Run:x@d"),
    ("mailbox", {"primaryAddress": "Bob@Contoso.com", "upn": "b@c"}, "mailbox:bob@contoso.com"),
    ("mailboxConfiguration", {"configurationId": "cfg-1", "mailboxPrimaryAddress": "a@b"},
     "mailboxConfiguration:cfg-1"),
    ("mailboxConfiguration", {"mailboxPrimaryAddress": "A@B.com",
                              "configurationType": "mailDelegation"},
     "mailboxConfiguration:a@b.com:mailDelegation"),
    ("analyzedMessage", {"networkMessageId": "n-1", "recipientEmailAddress": "Amy@Contoso.com"},
     "analyzedMessage:n-1:amy@contoso.com"),
    ("mailCluster", {"query": "(Sender:x)", "clusterBy": "Url", "clusterByValue": "u"},
     "mailCluster:(Sender:x)"),
    ("mailCluster", {"clusterBy": "Url", "clusterByValue": "https://u"},
     "mailCluster:Url=https://u"),
    ("url", {"url": "https://Evil.example/A"}, "url:https://Evil.example/A"),
    ("ip", {"ipAddress": "2001:db8::1"}, "ip:2001:db8::1"),
    ("user", {"userAccount": {"azureAdUserId": "g-1", "userPrincipalName": "A@B"}}, "user:g-1"),
    ("user", {"userAccount": {"userPrincipalName": "Amy@Contoso.com"}}, "user:amy@contoso.com"),
    ("user", {"userAccount": {"userSid": "S-1-5-21-1"}}, "user:S-1-5-21-1"),
    ("user", {"userAccount": {"accountName": "amy", "domainName": "CONTOSO"}},
     "user:CONTOSO\\amy"),
    ("service", {"name": "UpdSvc", "mdeDeviceId": "d"}, "service:UpdSvc@d"),
    ("service", {"serviceName": "UpdSvc"}, "service:UpdSvc"),
    ("driver", {"name": "rtcore64", "path": "C:\\x.sys", "mdeDeviceId": "d"},
     "driver:rtcore64@d"),
    ("scheduledTask", {"path": "\\Tasks\\Upd", "mdeDeviceId": "d"},
     "scheduledTask:\\Tasks\\Upd@d"),
    ("cloudApplication", {"appId": 11161, "displayName": "Office"}, "cloudApplication:11161"),
    ("securityGroup", {"securityGroupId": "sg-1", "displayName": "Admins"},
     "securityGroup:sg-1"),
    ("kubernetesPod", {"tenantId": "t", "podId": "p-1"}, "kubernetesPod:p-1"),
    ("somethingNew", {"id": "n-1", "otherId": "o"}, "somethingNew:n-1"),
]


@pytest.mark.parametrize(("entity_type", "fields", "key"), KEYS)
def test_identity_keys(entity_type: str, fields: dict[str, Any], key: str) -> None:
    assert graph.identity_key(entity_type, fields) == key


@pytest.mark.parametrize(
    ("entity_type", "fields"),
    [("device", {}), ("file", {"fileDetails": "not an object"}), ("process", {"processId": 1}),
     ("registryKey", {"registryHive": "HKLM"}), ("analyzedMessage", {"subject": "hi"}),
     ("mailCluster", {"clusterBy": "Url"}), ("url", {"url": ""}), ("user", {"userAccount": {}}),
     ("service", {"mdeDeviceId": "d"}), ("malware", {}), ("device", {"mdeDeviceId": True})],
)
def test_keys_without_enough_fields_fall_back_to_a_digest(
    entity_type: str, fields: dict[str, Any]
) -> None:
    assert graph.identity_key(entity_type, fields) == (
        f"{entity_type}:fields#{graph.fields_digest(fields)}"
    )


def test_digest_ignores_volatile_fields_and_field_order() -> None:
    first = {"a": 1, "b": [1, 2], "verdict": "malicious", "createdDateTime": "T1"}
    second = {"b": [1, 2], "a": 1, "verdict": "suspicious", "createdDateTime": "T2"}
    assert graph.identity_key("malware", first) == graph.identity_key("malware", second)
    assert graph.identity_key("malware", first) != graph.identity_key("malware", {"a": 2})


def test_same_entity_in_graph_and_native_gets_the_same_key(tmp_path: Path) -> None:
    fields = {"mdeDeviceId": "d", "fileDetails": {"sha256": "AB", "fileName": "x.exe"}}
    (from_graph,) = alert(item("file", verdict="malicious", **fields))
    doc = {"apiVersion": "airgate/v1", "kind": "Investigation", "id": "i",
           "evidence": [{"type": "file", "verdict": "malicious", "fields": fields}]}
    (tmp_path / "n.json").write_text(json.dumps(doc))
    (from_native,) = load_evidence(tmp_path / "n.json")
    assert from_graph.key == from_native.key == "file:ab@d"
    # Graph fields are the item's own, verdict included; the rule-relevant ones agree.
    assert {k: v for k, v in from_graph.fields.items() if k != "verdict"} == from_native.fields


def test_device_group_resolution() -> None:
    found = alert(
        item("file", mdeDeviceId="d2", fileDetails={"sha256": "aa"}),  # before its device
        item("device", mdeDeviceId="d1", rbacGroupName="Tier0"),
        item("device", mdeDeviceId="d2", rbacGroupName="Servers"),
        item("process", mdeDeviceId="d1", processId=7),
        item("registryValue", mdeDeviceId="d1", registryKey="k", registryValueName="v"),
        item("file", mdeDeviceId="d3", fileDetails={"sha256": "bb"}),  # device not in alert
        item("user", mdeDeviceId="d1", userAccount={"azureAdUserId": "u"}),  # not device-side
    )
    assert [e.device_group for e in found] == ["Servers", "Tier0", "Servers", "Tier0", "Tier0",
                                               None, None]


def test_native_device_group_resolution(tmp_path: Path) -> None:
    (tmp_path / "n.yaml").write_text(
        "apiVersion: airgate/v1\nkind: Investigation\nid: i\nevidence:\n"
        "  - {type: service, verdict: suspicious, fields: {name: s, mdeDeviceId: d1}}\n"
        "  - {type: device, verdict: malicious, fields: {mdeDeviceId: d1, rbacGroupName: G1}}\n"
        "  - {type: driver, verdict: suspicious, fields: {name: x, mdeDeviceId: d1,"
        " rbacGroupName: Own}}\n"
        "  - {type: scheduledTask, verdict: suspicious, fields: {name: t}}\n"
    )
    assert [e.device_group for e in load_evidence(tmp_path / "n.yaml")] == [
        "G1", "G1", "Own", None]


@pytest.mark.parametrize(
    ("entity_type", "fields", "name"),
    [
        ("analyzedMessage", {"networkMessageId": "n", "subject": "Hi",
                             "p1Sender": {"emailAddress": "a@b.example"}}, "a@b.example: Hi"),
        ("analyzedMessage", {"networkMessageId": "n"}, "n:"),
        ("mailbox", {"primaryAddress": "Bob@Contoso.com"}, "Bob@Contoso.com"),
        ("user", {"userAccount": {"accountName": "amy", "domainName": "C"}}, "C\\amy"),
        ("mailCluster", {"clusterBy": "Url", "clusterByValue": "u", "emailCount": 3},
         "Url=u (3 emails)"),
        ("mailboxConfiguration", {"configurationType": "mailForwardingRule",
                                  "mailboxPrimaryAddress": "a@b"}, "mailForwardingRule of a@b"),
        ("url", {"url": "https://x"}, "https://x"),
        ("cloudApplication", {"appId": 1, "displayName": "Office 365"}, "Office 365"),
        ("malware", {}, "fields#" + graph.fields_digest({})),
    ],
)
def test_readable_names(entity_type: str, fields: dict[str, Any], name: str) -> None:
    key = graph.identity_key(entity_type, fields)
    assert graph.readable_name(entity_type, fields, key) == name


HOSTILE = "Invoice $(rm -rf /) `id` <script>alert(1)</script> {{7*7}} '; DROP TABLE x;--\x1b[2J"


def test_hostile_subject_stays_verbatim_data() -> None:
    (message,) = alert(item(
        "analyzedMessage", verdict="malicious", networkMessageId="n-1",
        recipientEmailAddress="a@b.example", subject=HOSTILE,
        p1Sender={"emailAddress": "x@evil.example"},
    ))
    assert message.fields["subject"] == HOSTILE
    assert message.name == f"x@evil.example: {HOSTILE}"
    assert message.key == "analyzedMessage:n-1:a@b.example"


def test_derive_entity_type() -> None:
    assert graph.derive_entity_type(f"{P}fooBarEvidence") == "fooBar"
    assert graph.derive_entity_type(f"{P}Evidence") == "Evidence"
    assert graph.derive_entity_type("#microsoft.graph.user") == "user"
