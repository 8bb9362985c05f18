"""Evidence and Location records built by the reader are the ones their constructors build."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
from typing import Any

import pytest

from airgate.errors import Location
from airgate.evidence.reader import load_evidence
from airgate.model import Evidence

NATIVE = {"apiVersion": "airgate/v1", "kind": "Investigation", "id": "inv-1",
          "source": "antivirus", "evidence": [
              {"type": "device", "verdict": "Malicious",
               "fields": {"mdeDeviceId": "d1", "rbacGroupName": "labs"}},
              {"type": "file", "verdict": "suspicious", "name": "given",
               "fields": {"fileDetails": {"sha256": "AB"}, "mdeDeviceId": "d1"}}]}
ALERT = {"id": "a-1", "evidence": [
    {"@odata.type": "#microsoft.graph.security.ipEvidence", "verdict": "malicious",
     "ipAddress": "10.0.0.1"},
    {"@odata.type": "#microsoft.graph.security.userEvidence",
     "userAccount": {"userPrincipalName": "U@x"}}]}


def _read(document: dict[str, Any]) -> list[Evidence]:
    stream = io.BytesIO((json.dumps(document) + "\n" + json.dumps(document) + "\n").encode())
    stream.name = "items.ndjson"
    return load_evidence(stream)


@pytest.mark.parametrize("document", [NATIVE, ALERT], ids=["native", "graph"])
def test_records_equal_constructed_ones(document: dict[str, Any]) -> None:
    items = _read(document)
    assert len(items) == 4
    for item in items:
        values = {f.name: getattr(item, f.name) for f in dataclasses.fields(Evidence)}
        rebuilt = Evidence(**values)
        assert item == rebuilt and hash(item.location) == hash(rebuilt.location)
        assert vars(item) == vars(rebuilt)
        assert dataclasses.asdict(item) == dataclasses.asdict(rebuilt)
        assert copy.deepcopy(item) == item
        assert dataclasses.replace(item, name="other").name == "other"
        location = item.location
        assert location is not None and location.line in (1, 2)
        assert location == Location(location.file, location.line, None, location.path)
        assert vars(location) == vars(Location(location.file, location.line, None,
                                               location.path))
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign"):
            item.verdict = "unknown"  # type: ignore[misc]


def test_locations_name_each_item() -> None:
    items = _read(NATIVE)
    assert [str(i.location) for i in items] == ["items.ndjson:1"] * 2 + ["items.ndjson:2"] * 2
    assert [i.location.path for i in items if i.location] == [("evidence", 0), ("evidence", 1)] * 2
