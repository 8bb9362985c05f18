"""Parsed evidence documents -> Evidence records: native investigations and Graph alerts.

airgate.evidence reads bytes and parses them; this module checks the structure of
what was parsed, normalizes it and builds the records, with located errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airgate.errors import EvidenceError, Finding, Location, format_json_path
from airgate.evidence import context, graph
from airgate.evidence.native import NativeChecker
from airgate.model import Evidence, normalize_verdict
from airgate.policy.jsonsrc import positions
from airgate.policy.yamlsrc import Document, Path

Warn = Callable[[Finding], None]


# ---------------------------------------------------------------- records
# The paths of native evidence items, shared (tuples are immutable): one less tuple per item.
_MAX_PATHS = 1024
_ITEM_PATHS = tuple(("evidence", index) for index in range(_MAX_PATHS))


# ---------------------------------------------------------------- locations
class Where:
    """Where a parsed document came from; finds line and column only when asked."""

    __slots__ = ("file", "line", "doc", "text")

    def __init__(self, file: str, *, line: int | None = None, doc: Document | None = None,
                 text: str | None = None):
        self.file, self.line, self.doc, self.text = file, line, doc, text

    def item(self, path: Path) -> Location:
        """Cheap: the location an Evidence record carries."""
        if self.doc is not None and self.text is None:
            return self.doc.locate(path)
        return Location(self.file, self.line, None, path)

    def exact(self, path: Path, *, key: bool = False) -> Location:
        """Precise, for errors: may parse the text again."""
        if self.doc is None and self.text is not None:
            self.doc = positions(self.text, self.file)
        if self.doc is None:
            return Location(self.file, self.line, None, path)
        found = self.doc.locate(path, key=key)
        if self.line is not None and found.line is not None:
            return Location(self.file, self.line + found.line - 1, found.column, path)
        return found

    def duplicate(self) -> EvidenceError:
        """The error for a text the decoder refused for a duplicate key: located at that key."""
        try:
            positions(self.text or "", self.file)
        except EvidenceError as exc:
            found = exc.location
            if self.line is not None and found is not None and found.line is not None:
                found = Location(self.file, self.line + found.line - 1, found.column, found.path)
            return EvidenceError(exc.message, found, code=exc.code)
        return EvidenceError("duplicate key", Location(self.file, self.line), code="duplicate-key")

    def error(self, message: str, path: Path, code: str, *, key: bool = False) -> EvidenceError:
        at = f" (at {format_json_path(path)})" if path else ""
        return EvidenceError(message + at, self.exact(path, key=key), code=code)


def kind_of(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return type(value).__name__


# ---------------------------------------------------------------- documents
_NATIVE = NativeChecker()
# The spellings seen in practice, looked up before the general normalization.
_VERDICTS = {
    spelling: normalize_verdict(spelling)
    for spelling in ("malicious", "suspicious", "noThreatsFound", "unknown", "unknownFutureValue",
                     "Malicious", "Suspicious", "No threats found", "Clean", "Unknown")
}


# Lists, not generators, below: one alert or investigation is small, and each generator
# layer costs on the per-line path of large streams.
def to_evidence(data: Any, where: Where, warn: Warn) -> list[Evidence]:
    if type(data) is not dict:
        raise where.error(
            f"expected an object (an airgate Investigation, a Graph alert or a Graph list),"
            f" got {kind_of(data)}", (), "shape"
        )
    if "kind" in data or "apiVersion" in data:
        return _native(data, where)
    value = data.get("value")
    if type(value) is list and "evidence" not in data:
        out: list[Evidence] = []
        for index, alert in enumerate(value):
            out += _alert(alert, ("value", index), where, warn)
        return out
    if _looks_like_alert(data):
        return _alert(data, (), where, warn)
    raise where.error(
        "not evidence airgate knows: expected 'kind: Investigation' (native format),"
        " a Microsoft Graph alert or a Graph list ('value')", (), "unknown-format"
    )


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
        verdict = _VERDICTS.get(item["verdict"]) or normalize_verdict(item["verdict"])
        path = _ITEM_PATHS[index] if index < _MAX_PATHS else ("evidence", index)
        if verdict is None:
            raise where.error(_bad_verdict(item["verdict"]), (*path, "verdict"), "verdict")
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


def _bad_verdict(value: object) -> str:
    return (
        f"unknown verdict {value!r} (expected malicious, suspicious, noThreatsFound, unknown,"
        " or Malicious, Suspicious, No threats found, Clean)"
    )


def _alert(alert: Any, base: Path, where: Where, warn: Warn) -> list[Evidence]:
    # Structural checks by hand, not jsonschema: this is the per-line path of large streams.
    if type(alert) is not dict:
        raise where.error(f"expected a Graph alert object, got {kind_of(alert)}", base, "shape")
    investigation = alert.get("id")
    if type(investigation) is not str or not investigation:
        raise where.error("Graph alert has no 'id' string", (*base, "id") if "id" in alert
                          else base, "shape")
    items = alert.get("evidence", [])
    if type(items) is not list:
        raise where.error(f"'evidence' must be a list, got {kind_of(items)}", (*base, "evidence"),
                          "shape")
    parsed: list[tuple[str, dict[str, Any], str, str]] = []
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
        raw_verdict = item.get("verdict")
        if raw_verdict is None:
            verdict = "unknown"
        else:
            found = (_VERDICTS.get(raw_verdict) if type(raw_verdict) is str else None) or (
                normalize_verdict(raw_verdict)
            )
            if found is None:
                raise where.error(_bad_verdict(raw_verdict), (*path, "verdict"), "verdict")
            verdict = found
        # The parsed item is ours alone: reuse it as the fields, minus its type marker.
        del item["@odata.type"]
        parsed.append((entity_type, item, verdict, odata))
    context.annotate([(t, f) for t, f, _, _ in parsed], alert)
    groups = graph.device_groups([(t, f) for t, f, _, _ in parsed])
    out: list[Evidence] = []
    for index, (entity_type, fields, verdict, odata) in enumerate(parsed):
        key = graph.identity_key(entity_type, fields)
        out.append(Evidence(
            investigation, entity_type, verdict, key,
            graph.readable_name(entity_type, fields, key), fields, "graph",
            "automatedInvestigation", odata, graph.device_group_for(entity_type, fields, groups),
            where.item((*base, "evidence", index)),
        ))
    return out
