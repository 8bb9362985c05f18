"""Incidents (Graph and Microsoft 365 Defender), legacy alerts, inputs that give no evidence.

The sample files under tests/data/evidence/ follow the documented response shapes:
Graph ``GET /security/incidents?$expand=alerts``, ``GET /security/incidents/{id}``,
the legacy ``GET /security/alerts``, and the Defender XDR API ``GET /api/incidents``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from airgate.errors import EvidenceError, Finding
from airgate.evidence.reader import iter_units, load_evidence
from airgate.model import Evidence
from helpers import DATA

EVIDENCE = DATA / "evidence"
P = "#microsoft.graph.security."


def read(path: Path | io.BytesIO) -> tuple[list[Evidence], list[Finding]]:
    seen: list[Finding] = []
    return load_evidence(path, on_warning=seen.append), seen


def named(payload: Any, name: str) -> io.BytesIO:
    stream = io.BytesIO(json.dumps(payload, indent=1).encode())
    stream.name = name
    return stream


# ---------------------------------------------------------------- Graph incidents
def test_incident_list_is_one_investigation_per_incident() -> None:
    items, seen = read(EVIDENCE / "graph-incidents.json")
    assert seen == []
    assert [(e.investigation, e.entity_type, e.verdict, e.source) for e in items] == [
        ("2972395", "device", "suspicious", "graph"),
        ("2972395", "file", "malicious", "graph"),
        ("2972401", "analyzedMessage", "malicious", "graph"),
    ]
    # The file's alert has no device evidence: its device group comes from the other
    # alert of the same incident.
    assert [e.device_group for e in items] == ["Workstations", "Workstations", None]
    assert items[1].location is not None
    assert items[1].location.path == ("value", 0, "alerts", 1, "evidence", 0)


def test_incident_items_keep_the_keys_and_fields_of_alert_items() -> None:
    (incident_file,) = [e for e in read(EVIDENCE / "graph-incidents.json")[0]
                        if e.entity_type == "file"]
    raw = json.loads((EVIDENCE / "graph-incidents.json").read_text())
    alert = raw["value"][0]["alerts"][1]
    (alone,) = load_evidence(named(alert, "alert.json"))
    assert (incident_file.key, incident_file.fields) == (alone.key, alone.fields)
    assert alone.investigation == alert["id"]  # an alert on its own: its own id, as before
    assert incident_file.investigation == alert["incidentId"]


def test_single_incident_with_expanded_alerts() -> None:
    items, seen = read(EVIDENCE / "graph-incident.json")
    assert [(e.investigation, e.key) for e in items] == [
        ("2972395", "url:http://downloads.fabrikam-pay.example/update.ps1")]
    assert seen == []


def test_incident_without_expanded_alerts_is_reported() -> None:
    items, seen = read(EVIDENCE / "graph-incident-no-alerts.json")
    assert items == []
    assert [(f.code, f.location.file) for f in seen] == [
        ("no-evidence", str(EVIDENCE / "graph-incident-no-alerts.json"))]
    assert "incident without its alerts (request it with $expand=alerts)" in seen[0].message


def test_incident_alert_errors_are_located_inside_the_incident() -> None:
    payload = {"value": [{"id": "7", "incidentWebUrl": "u", "alerts": [
        {"id": "a", "evidence": [{"@odata.type": f"{P}urlEvidence", "verdict": "bad"}]}]}]}
    with pytest.raises(EvidenceError, match=r"unknown verdict 'bad'.*\$\.value\[0\]\.alerts\[0\]"
                                            r"\.evidence\[0\]\.verdict"):
        load_evidence(named(payload, "i.json"))


# ---------------------------------------------------------------- no evidence at all
def test_legacy_alerts_are_named_in_the_warning() -> None:
    items, seen = read(EVIDENCE / "legacy-alerts.json")
    assert items == []
    (finding,) = seen
    assert (finding.severity, finding.code) == ("warning", "no-evidence")
    assert str(finding).startswith(f"{EVIDENCE / 'legacy-alerts.json'}: warning: no-evidence:")
    assert "2 items: legacy Microsoft Graph security alert (the /security/alerts API" in (
        finding.message)
    assert "/security/alerts_v2" in finding.message


def test_a_single_legacy_alert_is_no_longer_an_unknown_format() -> None:
    alert = json.loads((EVIDENCE / "legacy-alerts.json").read_text())["value"][1]
    items, seen = read(named(alert, "one.json"))
    assert items == [] and [f.code for f in seen] == ["no-evidence"]
    assert "legacy Microsoft Graph security alert" in seen[0].message


@pytest.mark.parametrize(("payload", "holds"), [
    ({"value": []}, "a list response ('value') with no items"),
    ({"id": "a", "evidence": []}, "a Microsoft Graph alert with no evidence"),
    ({"apiVersion": "airgate/v1", "kind": "Investigation", "id": "i", "evidence": []},
     "an airgate Investigation with no evidence items"),
    ({"incidentId": 5, "alerts": []},
     "a Microsoft 365 Defender incident whose alerts have no entities"),
])
def test_a_file_that_gives_no_evidence_says_what_it_holds(payload: Any, holds: str) -> None:
    items, seen = read(named(payload, "x.json"))
    assert items == []
    assert [str(f) for f in seen] == [
        f"x.json: warning: no-evidence: no evidence read from this file: it holds {holds}"]


def test_a_file_with_evidence_gives_no_no_evidence_warning() -> None:
    mixed = {"value": [{"id": "a", "evidence": []},
                       {"id": "b", "evidence": [{"@odata.type": f"{P}ipEvidence",
                                                 "ipAddress": "203.0.113.9"}]}]}
    items, seen = read(named(mixed, "x.json"))
    assert (len(items), seen) == (1, [])


def test_yaml_documents_that_all_give_nothing_are_reported_once() -> None:
    text = ("apiVersion: airgate/v1\nkind: Investigation\nid: a\nevidence: []\n---\n"
            "apiVersion: airgate/v1\nkind: Investigation\nid: b\nevidence: []\n")
    stream = io.BytesIO(text.encode())
    stream.name = "two.yaml"
    items, seen = read(stream)
    assert items == []
    assert [f.message for f in seen] == [
        "no evidence read from this file: it holds 2 documents: an airgate Investigation with"
        " no evidence items; an airgate Investigation with no evidence items"]


def test_ndjson_reports_lines_of_evidence_less_shapes_not_investigations_going_on(
        tmp_path: Path) -> None:
    legacy = json.loads((EVIDENCE / "legacy-alerts.json").read_text())["value"][0]
    lines = [
        {"apiVersion": "airgate/v1", "kind": "Investigation", "id": "i", "evidence": []},
        {"id": "a", "evidence": []},  # an alert whose evidence may come on the next lines
        legacy,
        {"id": "7", "incidentWebUrl": "https://security.microsoft.com/incidents/7"},
    ]
    path = tmp_path / "feed.ndjson"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    items, seen = read(path)
    assert items == []
    assert [(f.code, f.location.line, f.location.column) for f in seen] == [
        ("no-evidence", 3, 1), ("no-evidence", 4, 1)]
    assert "line: it holds a legacy Microsoft Graph security alert" in seen[0].message
    assert "$expand=alerts" in seen[1].message


def test_an_empty_ndjson_file_is_reported_in_both_readers(tmp_path: Path) -> None:
    path = tmp_path / "empty.ndjson"
    path.write_text("\n\n")
    items, seen = read(path)
    assert items == []
    assert [f.message for f in seen] == ["no evidence read from this file: it holds no NDJSON"
                                         " lines"]
    (unit,) = list(iter_units(path))  # what the worker processes of evaluate read
    assert not isinstance(unit, tuple) and unit.warnings == seen


# ---------------------------------------------------------------- wrong shapes
def test_a_wrapped_list_says_what_was_expected_and_how_to_unwrap() -> None:
    with pytest.raises(EvidenceError, match=r"got a list of records that each hold an alert or"
                                            r" incident under 'alert'.*jq '\{value: \[\.\[\]"
                                            r"\.alert\]\}'") as info:
        load_evidence(EVIDENCE / "wrapped-alerts.json")
    assert info.value.location is not None and info.value.location.line == 1


def test_a_bare_list_of_alerts_is_told_to_be_a_list_response() -> None:
    alert = {"id": "a", "evidence": []}
    with pytest.raises(EvidenceError, match=r"got a list of alerts or incidents: wrap them as a"
                                            r" list response, \{\"value\": \[\.\.\.\]\}"):
        load_evidence(named([alert], "bare.json"))


def test_graph_alert_without_id_keeps_its_message() -> None:
    with pytest.raises(EvidenceError, match=r"Graph alert has no 'id' string \(at \$\.value\[0\]"):
        load_evidence(named({"value": [{"title": "x", "evidence": []}]}, "x.json"))



def test_a_wrapped_alert_in_a_list_response_is_named() -> None:
    record = json.loads((EVIDENCE / "wrapped-alerts.json").read_text())[0]
    with pytest.raises(EvidenceError, match=r"Graph alert has no 'id' string; it holds an alert"
                                            r" under 'alert' .*: give the alert itself"
                                            r" \(at \$\.value\[0\]\)"):
        load_evidence(named({"value": [record]}, "x.json"))
