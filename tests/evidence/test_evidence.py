"""The evidence loader: every format, standard input, streaming, and located errors."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest

from airgate.errors import EvidenceError, Finding
from airgate.evidence import reader as ev
from airgate.evidence.native import NativeChecker, load_schema
from airgate.model import Evidence
from helpers import DATA as SAMPLES
from helpers import ROOT

DATA = SAMPLES / "evidence"
EXAMPLES = ROOT / "examples"


def native(*items: str, extra: str = "") -> str:
    body = "".join(items)
    return f"apiVersion: airgate/v1\nkind: Investigation\nid: inv-1\n{extra}evidence:\n{body}"


def load(tmp_path: Path, name: str, content: str | bytes) -> list[Evidence]:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return ev.load_evidence(path)


# ---------------------------------------------------------------- formats
def test_native_yaml_with_several_documents() -> None:
    items = ev.load_evidence(DATA / "multi.yaml")
    assert [(e.investigation, e.entity_type, e.verdict) for e in items] == [
        ("inv-1", "device", "malicious"),
        ("inv-1", "file", "suspicious"),
        ("inv-2", "user", "noThreatsFound"),
    ]
    device, file, user = items
    assert device.source == "native" and device.action_source == "automatedInvestigation"
    assert user.action_source == "manual"
    assert user.name == "Carol"
    assert file.key == "file:ab12@d1" and file.device_group == "Tier0"
    assert device.location is not None and str(device.location) == f"{DATA / 'multi.yaml'}:6:5"


def test_native_json(tmp_path: Path) -> None:
    doc = {
        "apiVersion": "airgate/v1", "kind": "Investigation", "id": "inv-9", "source": "antivirus",
        "evidence": [{"type": "file", "verdict": "Malicious",
                      "fields": {"fileDetails": {"sha256": "CAFE", "fileName": "x.exe"}}}],
    }
    (item,) = load(tmp_path, "inv.json", json.dumps(doc, indent=2))
    assert (item.investigation, item.entity_type, item.verdict, item.key, item.name) == (
        "inv-9", "file", "malicious", "file:cafe", "x.exe")
    assert item.action_source == "antivirus"
    assert item.fields == {"fileDetails": {"sha256": "CAFE", "fileName": "x.exe"}}


def test_graph_alert_sample() -> None:
    items = ev.load_evidence(EXAMPLES / "graph-alert.json")
    assert [e.entity_type for e in items] == ["device", "file", "process", "registryKey"]
    assert {e.investigation for e in items} == {"da637578995287051192_756343937"}
    assert {e.source for e in items} == {"graph"}
    assert {e.verdict for e in items} == {"unknown"}
    assert items[1].odata_type == "#microsoft.graph.security.fileEvidence"
    assert "@odata.type" not in items[1].fields
    assert items[1].fields["fileDetails"]["fileName"] == "MsSense.exe"


def test_graph_list_response() -> None:
    items = ev.load_evidence(DATA / "graph-list.json")
    assert [(e.investigation, e.key, e.verdict) for e in items] == [
        ("alert-1", "url:https://evil.example/a", "malicious"),
        ("alert-2", "ip:203.0.113.9", "suspicious"),
        ("alert-2", "user:u-1", "unknown"),  # Graph evidence without a verdict
    ]


def test_ndjson_of_investigations_by_extension() -> None:
    items = ev.load_evidence(DATA / "investigations.jsonl")
    assert [(e.investigation, e.verdict) for e in items] == [
        ("n-1", "malicious"), ("n-2", "noThreatsFound"), ("n-2", "suspicious")]
    assert [e.location.line for e in items if e.location] == [1, 3, 3]


def test_ndjson_of_alerts_example() -> None:
    items = ev.load_evidence(EXAMPLES / "alerts.ndjson")
    assert len({e.investigation for e in items}) == 4
    assert {e.source for e in items} == {"graph", "native"}


def test_ndjson_detected_without_extension(tmp_path: Path) -> None:
    alert = {"id": "a", "evidence": [
        {"@odata.type": "#microsoft.graph.security.ipEvidence", "ipAddress": "192.0.2.7"}]}
    text = "\n" + json.dumps(alert) + "\n" + json.dumps({**alert, "id": "b"}) + "\n"
    items = load(tmp_path, "alerts.json", text)
    assert [(e.investigation, e.location.line if e.location else None) for e in items] == [
        ("a", 2), ("b", 3)]


def test_single_line_json_is_one_document(tmp_path: Path) -> None:
    alert = {"id": "a", "evidence": [
        {"@odata.type": "#microsoft.graph.security.ipEvidence", "ipAddress": "192.0.2.7"}]}
    assert len(load(tmp_path, "one.json", json.dumps(alert) + "\n")) == 1


def test_graph_alert_written_as_yaml_and_json_with_bom(tmp_path: Path) -> None:
    text = ('id: a\nevidence:\n  - "@odata.type": "#microsoft.graph.security.urlEvidence"\n'
            "    url: https://x\n    verdict: Malicious\n")
    (from_yaml,) = load(tmp_path, "alert.yaml", text)
    assert (from_yaml.key, from_yaml.verdict, from_yaml.source) == ("url:https://x", "malicious",
                                                                    "graph")
    bom = b"\xef\xbb\xbf" + json.dumps({"id": "a", "evidence": []}).encode()
    assert load(tmp_path, "bom.json", bom) == []
    assert load(tmp_path, "bom.ndjson", bom + b"\n" + bom[3:] + b"\n") == []


def test_examples_investigation_yaml() -> None:
    items = ev.load_evidence(EXAMPLES / "investigation.yaml")
    assert {e.investigation for e in items} == {"inv-2024-0042"}
    assert len(items) == 11


def test_load_evidence_of_several_sources() -> None:
    items = ev.load_evidence([DATA / "graph-list.json", str(DATA / "investigations.jsonl")])
    assert len(items) == 6


# ---------------------------------------------------------------- standard input
NDJSON_BYTES = (DATA / "investigations.jsonl").read_bytes()
ONE_DOC = (DATA / "graph-list.json").read_bytes()


@pytest.mark.parametrize(
    ("payload", "count"),
    [(NDJSON_BYTES, 3), (ONE_DOC, 3), ((DATA / "multi.yaml").read_bytes(), 3)],
    ids=["ndjson", "json-document", "yaml"],
)
def test_stdin_dash(monkeypatch: pytest.MonkeyPatch, payload: bytes, count: int) -> None:
    fake = io.TextIOWrapper(io.BytesIO(payload), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", fake)
    items = ev.load_evidence("-")
    assert len(items) == count
    assert all(e.location is None or e.location.file == "<stdin>" for e in items)


@pytest.mark.parametrize(
    "stream",
    [io.BytesIO(NDJSON_BYTES), io.StringIO(NDJSON_BYTES.decode()), io.BytesIO(ONE_DOC)],
    ids=["binary-ndjson", "text-ndjson", "binary-document"],
)
def test_file_objects(stream: io.IOBase) -> None:
    assert len(list(ev.iter_evidence(stream))) == 3  # type: ignore[arg-type]


# ---------------------------------------------------------------- verdicts
@pytest.mark.parametrize(
    ("spelling", "verdict"),
    [("Malicious", "malicious"), ("MALICIOUS", "malicious"), ("Suspicious", "suspicious"),
     ("suspicious", "suspicious"), ("No threats found", "noThreatsFound"),
     ("no  threats  FOUND", "noThreatsFound"), ("noThreatsFound", "noThreatsFound"),
     ("Clean", "noThreatsFound"), ("clean", "noThreatsFound"), ("Unknown", "unknown"),
     ("unknownFutureValue", "unknownFutureValue")],
)
def test_verdict_aliases(tmp_path: Path, spelling: str, verdict: str) -> None:
    text = native(f"  - type: url\n    verdict: {spelling}\n    fields: {{url: u}}\n")
    native_item, = load(tmp_path, "inv.yaml", text)
    alert = {"id": "a", "evidence": [
        {"@odata.type": "#microsoft.graph.security.urlEvidence", "verdict": spelling, "url": "u"}]}
    graph_item, = load(tmp_path, "alert.json", json.dumps(alert))
    assert native_item.verdict == graph_item.verdict == verdict


# ---------------------------------------------------------------- errors
ALERT_HEAD = '{"id": "a", "evidence": ['
DEVICE = '{"@odata.type": "#microsoft.graph.security.deviceEvidence", "mdeDeviceId": "d"'

ERRORS = [
    ("latin1.json", b'{"id": "caf\xe9"}', ":1:12", "not valid UTF-8 (byte 0xe9)"),
    ("empty.json", "", ":1:1", "evidence is empty"),
    ("blank.yaml", "  \n\n", ":1:1", "evidence is empty"),
    ("broken.json", '{"id": }', ":1:8", "invalid JSON: Expecting value"),
    ("broken.yaml", "kind: [Investigation\n", ":2:1", "invalid YAML"),
    ("list.json", "[1, 2]", ":1:1", "expected an object (an airgate Investigation, a Graph alert,"
     " incident or list response, or a Microsoft 365 Defender incident), got a list"),
    ("scalar.yaml", "hello\n", ":1:1", "got a string"),
    ("other.json", '{"foo": 1}', ":1:1", "not evidence airgate knows"),
    ("kind.yaml", "apiVersion: airgate/v1\nkind: Policy\n", ":2:7",
     "unknown kind 'Policy' (expected Investigation) (at $.kind)"),
    ("nokind.yaml", "apiVersion: airgate/v1\nid: x\n", ":1:1", "missing 'kind'"),
    ("version.yaml", "apiVersion: airgate/v9\nkind: Investigation\nid: x\nevidence: []\n",
     ":1:13", "must be 'airgate/v1', got 'airgate/v9' (at $.apiVersion)"),
    ("noverdict.yaml", native("  - type: device\n    fields: {mdeDeviceId: d1}\n"), ":5:5",
     "missing required field 'verdict' (at $.evidence[0])"),
    ("notype.yaml", native("  - verdict: malicious\n    fields: {}\n"), ":5:5",
     "missing required field 'type' (at $.evidence[0])"),
    ("devise.yaml", native("  - type: devise\n    verdict: malicious\n    fields: {}\n"), ":5:11",
     "unknown entity type 'devise' (at $.evidence[0].type)"),
    ("extra.yaml",
     native("  - type: url\n    verdict: malicious\n    fields: {}\n    colour: red\n"), ":8:5",
     "unknown field 'colour' (allowed: fields, name, type, verdict)"),
    ("verdict.yaml", native("  - type: url\n    verdict: evil\n    fields: {}\n"), ":6:14",
     "unknown verdict 'evil' (expected malicious, suspicious, noThreatsFound"),
    ("fields.yaml", native("  - type: url\n    verdict: malicious\n    fields: [1]\n"), ":7:13",
     "must be an object, got [1] (at $.evidence[0].fields)"),
    ("source.yaml", native("", extra="source: robot\n") + " []\n", ":4:9",
     "'robot' is not one of"),
    ("dupe.json", '{"id": "a",\n "evidence": [],\n "id": "b"}', ":3:2",
     "duplicate key 'id' (first defined on line 1)"),
    ("dupe.yaml", "kind: Investigation\nkind: Investigation\n", ":2:1", "duplicate key 'kind'"),
    ("notlist.json", '{"id": "a", "@odata.context": "x", "evidence": {}}', ":1:48",
     "'evidence' must be a list, got an object (at $.evidence)"),
    ("noid.json", '{"@odata.context": "x", "evidence": []}', ":1:1", "Graph alert has no 'id'"),
    ("notype.json", ALERT_HEAD + '{"verdict": "malicious"}]}', ":1:26",
     "evidence item has no '@odata.type' (at $.evidence[0])"),
    ("graphverdict.json", ALERT_HEAD + DEVICE + ',\n "verdict": "Bad"}]}', ":2:13",
     "unknown verdict 'Bad'"),
    ("numverdict.json", ALERT_HEAD + DEVICE + ', "verdict": 5}]}', ":1:117",
     "unknown verdict 5"),
    ("itemlist.json", ALERT_HEAD + '"x"]}', ":1:26",
     "evidence item must be an object, got a string"),
    ("evnull.json", '{"id": "a", "evidence": null}', ":1:25",
     "'evidence' must be a list, got null (at $.evidence)"),
    # Located at the first bracket of the deepest level.
    ("deep.json", "[" * 100_000 + "]" * 100_000, ":1:100000",
     "JSON nesting is too deep (100000 levels)"),
    ("odata.json", ALERT_HEAD + '{"@odata.type": 5}]}', ":1:42",
     "'@odata.type' must be a string (at $.evidence[0]['@odata.type'])"),
    ("binary.json", b"\x00\x01", ":1:1", "invalid YAML: unacceptable character #x0000"),
    ("listitem.json", '{"value": [{"id": "a"}, 7]}', ":1:25",
     "expected a Graph alert object, got int (at $.value[1])"),
    ("bigint.json", '{"id": "a",\n "n": -' + "9" * 5000 + "}", ":2:7",
     "number with 5000 digits is too long"),
    ("bigint.yaml", "id: a\nn: " + "9" * 5000 + "\n", ":2:4",
     "number with 5000 digits is too long"),
    ("null.json", "null\n", ":1:1", "file holds no evidence document (only null or empty ones)"),
    ("seps.yaml", "---\n---\n", ":1:1", "file holds no evidence document"),
    ("nan.json", '{"id": "a",\n "n": [1, NaN]}', ":2:11",
     "invalid JSON: NaN and Infinity are not JSON numbers"),
    ("inf.json", '{"id": "a", "n": -Infinity}', ":1:18",
     "invalid JSON: NaN and Infinity are not JSON numbers"),
    ("nan.yaml", "id: a\nn: .NaN\n", ":2:4", ".NaN is not allowed (NaN and infinity"),
    ("inf.yaml", "id: a\nn: -.inf\n", ":2:4", "-.inf is not allowed (NaN and infinity"),
    # One line of JSON nested too deep for the NDJSON sniffing of the first line.
    ("deepline.json", '{"a": ' * 5000 + "1" + "}" * 5000 + "\n", ":1:29995",
     "JSON nesting is too deep (5000 levels)"),
    # Past MAX_JSON_DEPTH (512) but within what 3.11's decoder reads: refused on every Python.
    ("deep.json", '{"id": "a", "evidence": [], "x": ' + "[" * 600 + "]" * 600 + "}", ":1:633",
     "JSON nesting is too deep (601 levels)"),
    ("deep.ndjson", '{"id": "a", "evidence": [], "x": ' + "[" * 600 + "]" * 600 + "}\n",
     ":1:633", "JSON nesting is too deep (601 levels)"),
]


@pytest.mark.parametrize(("name", "content", "where", "message"), ERRORS,
                         ids=[e[0] for e in ERRORS])
def test_bad_evidence_is_located(tmp_path: Path, name: str, content: str | bytes, where: str,
                                 message: str) -> None:
    with pytest.raises(EvidenceError, match=re.escape(message)) as info:
        load(tmp_path, name, content)
    assert str(info.value.location) == str(tmp_path / name) + where


@pytest.mark.parametrize(
    ("file", "where", "message"),
    [
        ("bad-verdict.json", ":6:35", "unknown verdict 'evil'"),
        ("missing-verdict.yaml", ":5:5", "missing required field 'verdict'"),
        ("missing-type.yaml", ":5:5", "missing required field 'type'"),
        ("bad-verdict-line2.ndjson", ":2:97", "unknown verdict 'Bad' (expected"),
    ],
)
def test_invalid_sample_files(file: str, where: str, message: str) -> None:
    path = DATA / "invalid" / file
    with pytest.raises(EvidenceError, match=re.escape(message)) as info:
        ev.load_evidence(path)
    assert str(info.value.location) == f"{path}{where}"


GOOD = json.dumps({"id": "a", "evidence": [
    {"@odata.type": "#microsoft.graph.security.ipEvidence", "ipAddress": "192.0.2.1"}]})
NDJSON_ERRORS = [
    (GOOD + '\n\n{"id": \n', ":3:8", "invalid JSON: Expecting value"),
    (GOOD + '\n[1]\n', ":2:1", "expected a JSON object on each line, got a list"),
    (GOOD.encode() + b'\n{"id": "\xff"}\n', ":2:9", "line is not valid UTF-8 (byte 0xff)"),
    (GOOD + '\n{"id": "b", "id": "c"}\n', ":2:13", "duplicate key 'id'"),
    (GOOD + '\n{"id": "b", "evidence": [' + DEVICE + ', "verdict": "x"}]}\n', ":2:117",
     "unknown verdict 'x' (expected"),
    (GOOD + '\n{"kind": "Investigation", "apiVersion": "airgate/v1"}\n', ":2:1",
     "missing required fields 'id', 'evidence'"),
    (GOOD + '\n{"id": ' + "9" * 5000 + '}\n', ":2:8", "number with 5000 digits is too long"),
    (GOOD + '\n{"id": "b", "n": Infinity}\n', ":2:18",
     "invalid JSON: NaN and Infinity are not JSON numbers"),
]


@pytest.mark.parametrize(("content", "where", "message"), NDJSON_ERRORS)
def test_bad_ndjson_lines_name_file_and_line(tmp_path: Path, content: str | bytes, where: str,
                                            message: str) -> None:
    with pytest.raises(EvidenceError, match=re.escape(message)) as info:
        load(tmp_path, "s.ndjson", content)
    assert str(info.value.location) == str(tmp_path / "s.ndjson") + where


def test_ndjson_line_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ev, "MAX_LINE_BYTES", 150)
    content = GOOD + '\n{"id": "' + "x" * 300 + '"}\n'
    with pytest.raises(EvidenceError, match="line is longer than the limit of 150 bytes") as info:
        load(tmp_path, "big.jsonl", content)
    # The column of the first byte past the limit.
    assert str(info.value.location) == f"{tmp_path / 'big.jsonl'}:2:151"


@pytest.mark.parametrize("name", ["big.json", "-"])
def test_document_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setattr(ev, "MAX_DOCUMENT_BYTES", 100)
    payload = json.dumps({"id": "a", "evidence": [], "pad": "x" * 200}, indent=1).encode()
    if name == "-":
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(payload)))
        source: str | Path = "-"
    else:
        source = tmp_path / name
        source.write_bytes(payload)
    with pytest.raises(EvidenceError, match="larger than the limit of 100 bytes") as info:
        ev.load_evidence(source)
    # The first byte past the limit (byte 101): line 4, column 70, whether the size was
    # known before reading (a file) or found while reading (a pipe).
    assert info.value.location is not None
    assert (info.value.location.line, info.value.location.column) == (4, 70)


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p / "missing.json", "no such file"),
    (lambda p: p, "is a directory"),
])
def test_unreadable_sources(tmp_path: Path, make: object, message: str) -> None:
    with pytest.raises(EvidenceError, match=message):
        ev.load_evidence(make(tmp_path))  # type: ignore[operator]


# ---------------------------------------------------------------- streaming
def test_iter_evidence_is_lazy(tmp_path: Path) -> None:
    good = json.dumps({"id": "a", "evidence": [
        {"@odata.type": "#microsoft.graph.security.ipEvidence", "ipAddress": "192.0.2.1"}]})
    path = tmp_path / "big.ndjson"
    with path.open("w") as out:
        out.write(good + "\n")
        for _ in range(20_000):
            out.write('{"broken": \n')
    stream = ev.iter_evidence(path)
    first = next(stream)
    assert first.investigation == "a"
    with pytest.raises(EvidenceError, match="invalid JSON") as info:
        next(stream)
    assert info.value.location is not None and info.value.location.line == 2
    stream.close()


def test_stream_reads_only_what_it_needs() -> None:
    line = json.dumps({"id": "a", "evidence": [
        {"@odata.type": "#microsoft.graph.security.ipEvidence", "ipAddress": "192.0.2.1"}]})
    payload = ((line + "\n") * 50_000).encode()
    raw = io.BytesIO(payload)
    stream = ev.iter_evidence(raw)
    next(stream)
    assert raw.tell() < len(payload) // 100
    stream.close()


# ---------------------------------------------------------------- schema
def test_schema_is_valid_and_lists_every_entity_type() -> None:
    from jsonschema import Draft202012Validator

    from airgate.catalog import ENTITY_TYPES

    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    assert set(schema["$defs"]["evidence"]["properties"]["type"]["enum"]) == ENTITY_TYPES


QUICK_CASES = [
    {"apiVersion": "airgate/v1", "kind": "Investigation", "id": "i", "evidence": []},
    {"apiVersion": "airgate/v1", "kind": "Investigation", "id": "i", "source": "manual",
     "description": "d", "evidence": [{"type": "url", "verdict": "x", "name": "n", "fields": {}}]},
    {"apiVersion": "airgate/v1", "kind": "Investigation", "id": "", "evidence": []},
    {"apiVersion": "airgate/v1", "kind": "Investigation", "id": "i", "source": "bot",
     "evidence": []},
    {"apiVersion": "airgate/v1", "kind": "Investigation", "id": "i", "evidence": [
        {"type": "url", "verdict": "", "fields": {}}]},
    {"apiVersion": "airgate/v1", "kind": "Investigation", "id": "i", "evidence": [
        {"type": "url", "verdict": "v", "fields": {}, "name": 3}]},
    {"apiVersion": "airgate/v1", "kind": "Investigation", "id": "i", "evidence": [
        {"type": "nope", "verdict": "v", "fields": {}}]},
    {"apiVersion": "airgate/v1", "kind": "Investigation", "id": "i", "evidence": [
        {"type": "url", "verdict": "v"}]},
    {"apiVersion": "airgate/v1", "kind": "Investigation", "id": "i", "evidence": [], "x": 1},
    {"apiVersion": "airgate/v1", "kind": "Investigation", "id": 5, "evidence": []},
    {"apiVersion": "airgate/v1", "kind": "Investigation", "id": "i", "evidence": {}},
    {"apiVersion": "airgate/v1", "kind": "Investigation", "id": "i", "evidence": [
        {"type": "url", "verdict": "v", "fields": {}, "x": 1}]},
    {"apiVersion": "airgate/v1", "kind": "Investigation", "id": "i", "evidence": [
        {"verdict": "v", "fields": {}, "name": "n"}]},
    {"apiVersion": "airgate/v1", "kind": "Investigation", "id": "i", "evidence": [
        {"type": "url", "verdict": "v", "fields": []}]},
    {"apiVersion": "airgate/v1", "kind": "Investigation", "id": "i", "evidence": [
        {"type": ["url"], "verdict": "v", "fields": {}}]},
    {"apiVersion": "airgate/v1", "kind": "Investigation", "id": "i", "evidence": [["url"]]},
    {"kind": "Investigation", "id": "i", "evidence": []},
]


@pytest.mark.parametrize("doc", QUICK_CASES)
def test_quick_check_agrees_with_the_schema(doc: dict[str, object]) -> None:
    from jsonschema import Draft202012Validator

    schema_ok = Draft202012Validator(load_schema()).is_valid(doc)
    assert NativeChecker.quick_valid(doc) == schema_ok  # type: ignore[arg-type]
    assert (NativeChecker().first_error(doc) is None) == schema_ok  # type: ignore[arg-type]


def test_warnings_are_optional_and_collected() -> None:
    seen: list[Finding] = []
    alert = {"id": "a", "evidence": [{"@odata.type": "#microsoft.graph.security.fooEvidence"}]}
    items = list(ev.iter_evidence(io.BytesIO(json.dumps(alert).encode()), on_warning=seen.append))
    assert [e.entity_type for e in items] == ["foo"]
    assert [f.code for f in seen] == ["unknown-evidence-type"]
    assert list(ev.iter_evidence(io.BytesIO(json.dumps(alert).encode())))  # no callback: fine
