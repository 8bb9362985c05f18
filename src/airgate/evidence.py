"""Read investigation evidence into Evidence records, from any supported format.

Formats (docs/evidence.md): airgate's native Investigation (YAML or JSON), a
Microsoft Graph alert (``GET /security/alerts_v2/{id}``), a Graph list
(``{"value": [alert, ...]}``), and NDJSON streams of either. Evidence is
attacker-controlled: it stays data, and every way it can be malformed ends in
an EvidenceError with a location, never a traceback.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import PurePath
from typing import IO, Any, cast

from . import graph
from .errors import EvidenceError, Finding, InputError, Location, format_json_path
from .evidence_native import NativeChecker
from .jsonsrc import DECODER, DuplicateKey, positions
from .model import Evidence, normalize_verdict
from .yamlsrc import Document, Path, decode, iter_documents

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024  # a JSON or YAML document (not NDJSON)
MAX_LINE_BYTES = 4 * 1024 * 1024  # one NDJSON line
NDJSON_SUFFIXES = (".ndjson", ".jsonl")
YAML_SUFFIXES = (".yaml", ".yml")

Source = str | os.PathLike[str] | IO[bytes] | IO[str]
Warn = Callable[[Finding], None]


def _ignore(_finding: Finding) -> None:
    pass


def iter_evidence(source: Source, *, on_warning: Warn | None = None) -> Iterator[Evidence]:
    """Yield the evidence of one source lazily: a path, ``"-"`` for standard input, or a file
    object (binary or text). NDJSON is read line by line in constant memory."""
    warn = on_warning or _ignore
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        if name == "-":
            yield from _stream(sys.stdin.buffer, "<stdin>", "", warn)
            return
        try:
            handle = open(name, "rb")  # noqa: SIM115 - closed below, even on error
        except FileNotFoundError:
            raise EvidenceError("no such file", Location(name), code="not-found") from None
        except IsADirectoryError:
            raise EvidenceError("is a directory", Location(name), code="not-found") from None
        except OSError as exc:
            raise EvidenceError(f"cannot read file: {exc.strerror}", Location(name)) from None
        with handle:
            yield from _stream(handle, name, PurePath(name).suffix.lower(), warn)
        return
    given = getattr(source, "name", None)
    name = given if isinstance(given, str) else "<stream>"
    yield from _stream(_binary(source), name, PurePath(name).suffix.lower(), warn)


def load_evidence(
    sources: Source | Iterable[Source], *, on_warning: Warn | None = None
) -> list[Evidence]:
    """Every evidence item of one source or of several, in order."""
    if isinstance(sources, (str, os.PathLike)) or hasattr(sources, "read"):
        return list(iter_evidence(cast(Source, sources), on_warning=on_warning))
    out: list[Evidence] = []
    for source in sources:
        out.extend(iter_evidence(source, on_warning=on_warning))
    return out


# ---------------------------------------------------------------- reading
class _TextAsBytes(io.RawIOBase):
    """A text stream without a binary buffer (io.StringIO), read as UTF-8 bytes."""

    def __init__(self, text: IO[str]):
        self._text = text

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> bytes:
        line = self._text.readline(size if size is not None else -1)
        return line.encode("utf-8", "surrogatepass")

    def read(self, size: int | None = -1) -> bytes:
        return self._text.read(size if size is not None else -1).encode("utf-8", "surrogatepass")


def _binary(source: IO[Any]) -> IO[bytes]:
    if isinstance(source, io.TextIOBase):
        buffer = getattr(source, "buffer", None)
        return buffer if buffer is not None else _TextAsBytes(source)
    return source


def _readline(stream: IO[bytes], name: str, lineno: int) -> bytes:
    raw = stream.readline(MAX_LINE_BYTES + 1)
    if len(raw) > MAX_LINE_BYTES:
        raise EvidenceError(
            f"line is longer than the limit of {MAX_LINE_BYTES} bytes",
            Location(name, lineno),
            code="too-large",
        )
    return raw


def _stream(stream: IO[bytes], name: str, suffix: str, warn: Warn) -> Iterator[Evidence]:
    if suffix in NDJSON_SUFFIXES:
        yield from _ndjson(stream, name, 0, (), warn)
        return
    # Peek at most two non-blank lines: NDJSON when both are JSON objects on a line each.
    head: list[bytes] = []
    lines: list[tuple[int, bytes]] = []
    if suffix not in YAML_SUFFIXES:
        while len(lines) < 2:
            raw = stream.readline(MAX_LINE_BYTES + 1)
            head.append(raw)
            if not raw or len(raw) > MAX_LINE_BYTES or not raw.endswith(b"\n"):
                break
            if raw.isspace():
                continue
            lines.append((len(head), raw))
            if len(lines) == 1 and not _is_json_object_line(raw):
                break
            if len(lines) == 2 and not raw.lstrip().startswith(b"{"):
                break
        if len(lines) == 2 and lines[1][1].lstrip().startswith(b"{"):
            yield from _ndjson(stream, name, len(head), lines, warn)
            return
    raw = b"".join(head)
    try:
        size = os.fstat(stream.fileno()).st_size
    except (OSError, AttributeError, ValueError):
        size = 0  # a pipe or an in-memory stream: measured as it is read
    if size <= MAX_DOCUMENT_BYTES:
        raw += stream.read(MAX_DOCUMENT_BYTES + 1 - len(raw))
    if max(size, len(raw)) > MAX_DOCUMENT_BYTES:
        raise EvidenceError(
            f"document is larger than the limit of {MAX_DOCUMENT_BYTES} bytes"
            " (use NDJSON, one investigation or alert per line, for large inputs)",
            Location(name),
            code="too-large",
        )
    try:
        text = decode(raw, name, what="evidence")
    except InputError as exc:
        raise EvidenceError(exc.message, exc.location, code=exc.code) from None
    yield from _whole(text, name, suffix, warn)


def _is_json_object_line(raw: bytes) -> bool:
    stripped = raw.strip()
    if stripped.startswith(b"\xef\xbb\xbf"):
        stripped = stripped[3:]
    if not (stripped.startswith(b"{") and stripped.endswith(b"}")):
        return False
    try:
        return isinstance(json.loads(stripped), dict)
    except ValueError:  # broken JSON, duplicate keys, bad UTF-8: the whole-document path says
        return False


def _ndjson(
    stream: IO[bytes], name: str, lineno: int, first: Iterable[tuple[int, bytes]], warn: Warn
) -> Iterator[Evidence]:
    for number, raw in first:
        yield from _ndjson_line(raw, name, number, warn)
    while True:
        lineno += 1
        raw = _readline(stream, name, lineno)
        if not raw:
            return
        if raw.isspace():
            continue
        yield from _ndjson_line(raw, name, lineno, warn)


def _ndjson_line(raw: bytes, name: str, lineno: int, warn: Warn) -> list[Evidence]:
    if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EvidenceError(
            f"line is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            Location(name, lineno, exc.start + 1),
            code="encoding",
        ) from None
    try:
        data = DECODER.decode(text)
    except json.JSONDecodeError:
        # Again without the line end, so that "unexpected end" points into the line.
        try:
            DECODER.decode(text.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            raise EvidenceError(
                f"invalid JSON: {exc.msg}", Location(name, lineno, exc.colno), code="json"
            ) from None
        raise  # unreachable: the same text cannot parse now
    except DuplicateKey:
        raise _Where(name, line=lineno, text=text).duplicate() from None
    except RecursionError:
        raise EvidenceError(
            "JSON nesting is too deep", Location(name, lineno), code="too-deep"
        ) from None
    where = _Where(name, line=lineno, text=text)
    if type(data) is not dict:
        raise EvidenceError(
            f"expected a JSON object on each line, got {_kind(data)}", where.exact(()), code="shape"
        )
    return _document(data, where, warn)


def _whole(text: str, name: str, suffix: str, warn: Warn) -> Iterator[Evidence]:
    if suffix not in YAML_SUFFIXES and text.lstrip()[:1] in ("{", "["):
        try:
            data = DECODER.decode(text)
        except json.JSONDecodeError as exc:
            raise EvidenceError(
                f"invalid JSON: {exc.msg}", Location(name, exc.lineno, exc.colno), code="json"
            ) from None
        except DuplicateKey:
            raise _Where(name, text=text).duplicate() from None
        except RecursionError:
            raise EvidenceError(
                "JSON nesting is too deep", Location(name), code="too-deep"
            ) from None
        yield from _document(data, _Where(name, text=text), warn)
        return
    try:
        for doc in iter_documents(text, name):
            yield from _document(doc.data, _Where(name, doc=doc), warn)
    except InputError as exc:
        raise EvidenceError(exc.message, exc.location, code=exc.code) from None


# ---------------------------------------------------------------- locations
class _Where:
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


def _kind(value: object) -> str:
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
def _document(data: Any, where: _Where, warn: Warn) -> list[Evidence]:
    if type(data) is not dict:
        raise where.error(
            f"expected an object (an airgate Investigation, a Graph alert or a Graph list),"
            f" got {_kind(data)}", (), "shape"
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
        return False
    # Native items say "type"; a document of those that lacks "kind" is native gone wrong.
    first = evidence[0] if evidence else None
    return not (type(first) is dict and "type" in first and "@odata.type" not in first)


def _native(data: dict[str, Any], where: _Where) -> list[Evidence]:
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
    groups = graph.device_groups([(item["type"], item["fields"]) for item in items])
    out: list[Evidence] = []
    for index, item in enumerate(items):
        verdict = _VERDICTS.get(item["verdict"]) or normalize_verdict(item["verdict"])
        path = ("evidence", index)
        if verdict is None:
            raise where.error(_bad_verdict(item["verdict"]), (*path, "verdict"), "verdict")
        entity_type: str = item["type"]
        fields = item["fields"]
        key = graph.identity_key(entity_type, fields)
        name = item.get("name") or graph.readable_name(entity_type, fields, key)
        out.append(Evidence(
            investigation, entity_type, verdict, key, name, fields, "native", source, None,
            graph.device_group_for(entity_type, fields, groups), where.item(path),
        ))
    return out


def _bad_verdict(value: object) -> str:
    return (
        f"unknown verdict {value!r} (expected malicious, suspicious, noThreatsFound, unknown,"
        " or Malicious, Suspicious, No threats found, Clean)"
    )


def _alert(alert: Any, base: Path, where: _Where, warn: Warn) -> list[Evidence]:
    # Structural checks by hand, not jsonschema: this is the per-line path of large streams.
    if type(alert) is not dict:
        raise where.error(f"expected a Graph alert object, got {_kind(alert)}", base, "shape")
    investigation = alert.get("id")
    if type(investigation) is not str or not investigation:
        raise where.error("Graph alert has no 'id' string", (*base, "id") if "id" in alert
                          else base, "shape")
    items = alert.get("evidence", [])
    if type(items) is not list:
        raise where.error(f"'evidence' must be a list, got {_kind(items)}", (*base, "evidence"),
                          "shape")
    parsed: list[tuple[str, dict[str, Any], str, str]] = []
    for index, item in enumerate(items):
        path = (*base, "evidence", index)
        if type(item) is not dict:
            raise where.error(f"evidence item must be an object, got {_kind(item)}", path, "shape")
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
