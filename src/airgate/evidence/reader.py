"""Read investigation evidence into Evidence records, from any supported format.

Formats (docs/evidence.md): airgate's native Investigation (YAML or JSON), a
Microsoft Graph alert (``GET /security/alerts_v2/{id}``) or incident
(``?$expand=alerts``), a Defender XDR API incident, a list response
(``{"value": [...]}``), and NDJSON streams of them. An input that gives no
evidence at all is reported as a ``no-evidence`` warning. Evidence is
attacker-controlled: it stays data, and every way it can be malformed ends in
an EvidenceError with a location, never a traceback.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO, Any, NamedTuple, cast

from airgate.errors import EvidenceError, Finding, InputError, Location
from airgate.evidence.documents import Where, describe, kind_of, may_go_on, to_evidence
from airgate.evidence.strings import JSON_HINT, YAML_HINT, scrub
from airgate.model import Evidence
from airgate.policy.jsonsrc import (
    DECODER,
    DuplicateKey,
    NonFinite,
    long_number,
    non_finite,
    too_deep,
    too_deep_value,
)
from airgate.policy.yamlsrc import decode, iter_documents

# A JSON document (not NDJSON): parsed JSON takes up to ~30 times its size, and the
# table and json formats keep every decision; 16 MiB keeps evaluate under 1 GiB
# (docs/evidence.md, measured).
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_LINE_BYTES = 4 * 1024 * 1024  # one NDJSON line
# YAML is composed in Python, node by node (about 10 to 40 us each): a smaller size
# and value bound keep the worst YAML document to seconds (docs/evidence.md).
MAX_YAML_BYTES = 1024 * 1024
MAX_YAML_VALUES = 100_000
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
    for stream, name, suffix in _opened(source):
        yield from _stream(stream, name, suffix, warn)


Line = tuple[str, int, bytes]
"""One NDJSON line, not parsed yet: file name, line number, its bytes."""


@dataclass(frozen=True)
class Parsed:
    """The items of a whole (not NDJSON) document, and the warnings reading it gave."""

    items: list[Evidence]
    warnings: list[Finding]


Unit = Line | Parsed


def iter_units(source: Source) -> Iterator[Unit]:
    """The evidence of one source as :func:`iter_evidence` reads it, in units that can be
    parsed elsewhere (another process): NDJSON lines unparsed (:func:`parse_line` parses
    one), any other document parsed whole. Reading errors are raised where
    :func:`iter_evidence` raises them; a document that fails part way is first yielded
    with the items before the failure."""
    for stream, name, suffix in _opened(source):
        opened = _open(stream, name, suffix)
        if opened.text is None:
            lines = 0
            for number, raw in _ndjson_lines(stream, name, opened):
                lines += 1
                yield (name, number, raw)
            if not lines:
                yield Parsed([], [_no_lines(name)])
            continue
        items: list[Evidence] = []
        warnings: list[Finding] = []
        try:
            items.extend(_whole(opened.text, name, suffix, warnings.append))
        except EvidenceError:
            if items or warnings:
                yield Parsed(items, warnings)
            raise
        yield Parsed(items, warnings)


def parse_line(line: Line, *, on_warning: Warn | None = None) -> list[Evidence]:
    """The evidence items of one NDJSON line from :func:`iter_units`."""
    name, number, raw = line
    return _ndjson_line(raw, name, number, on_warning or _ignore)


def _opened(source: Source) -> Iterator[tuple[IO[bytes], str, str]]:
    """One ``(binary stream, name, suffix)`` for a source, open while the caller iterates."""
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        if name == "-":
            yield sys.stdin.buffer, "<stdin>", ""
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
            yield handle, name, PurePath(name).suffix.lower()
        return
    given = getattr(source, "name", None)
    name = given if isinstance(given, str) else "<stream>"
    yield _binary(source), name, PurePath(name).suffix.lower()


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
    """A text stream without a binary buffer (io.StringIO), read as UTF-8 bytes. A lone
    surrogate, which UTF-8 cannot hold, is written as its JSON escape: read from a
    string it then becomes the same escaped text as from a file (airgate.evidence.strings).
    """

    def __init__(self, text: IO[str]):
        self._text = text

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> bytes:
        line = self._text.readline(size if size is not None else -1)
        return line.encode("utf-8", "backslashreplace")

    def read(self, size: int | None = -1) -> bytes:
        text = self._text.read(size if size is not None else -1)
        return text.encode("utf-8", "backslashreplace")


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
            Location(name, lineno, MAX_LINE_BYTES + 1),  # the first byte past it
            code="too-large",
        )
    return raw


def _stream(stream: IO[bytes], name: str, suffix: str, warn: Warn) -> Iterator[Evidence]:
    opened = _open(stream, name, suffix)
    if opened.text is None:
        yield from _ndjson(stream, name, opened, warn)
    else:
        yield from _whole(opened.text, name, suffix, warn)


class _Opened(NamedTuple):
    """What the start of a source showed: NDJSON (``text`` None) or one document."""

    text: str | None
    lines: tuple[tuple[int, bytes], ...] = ()  # NDJSON lines read while deciding: number, bytes
    read: int = 0  # how many lines were read (blank ones included)


def _open(stream: IO[bytes], name: str, suffix: str) -> _Opened:
    if suffix in NDJSON_SUFFIXES:
        return _Opened(None)
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
            return _Opened(None, tuple(lines), len(head))
    raw = b"".join(head)
    try:
        size = os.fstat(stream.fileno()).st_size
    except (OSError, AttributeError, ValueError):
        size = 0  # a pipe or an in-memory stream: measured as it is read
    limit = MAX_YAML_BYTES if suffix in YAML_SUFFIXES else MAX_DOCUMENT_BYTES
    if size <= limit:
        raw += stream.read(limit + 1 - len(raw))
    if max(size, len(raw)) > limit:
        raise _too_large(stream, raw, name, limit,
                         "YAML " if suffix in YAML_SUFFIXES else "")
    try:
        return _Opened(decode(raw, name, what="evidence"))
    except InputError as exc:
        raise EvidenceError(exc.message, exc.location, code=exc.code) from None


def _too_large(stream: IO[bytes], raw: bytes, name: str, limit: int,
               what: str) -> EvidenceError:
    """The error for a document past ``limit``, located at its first byte past it
    (a line and a column in bytes)."""
    line: int | None = None
    column: int | None = None
    if len(raw) > limit:
        head = raw[:limit]
        line, column = head.count(b"\n") + 1, limit - (head.rfind(b"\n") + 1) + 1
    else:  # too large by its size alone: count its lines up to there, 1 MiB at a time
        try:
            stream.seek(0)
            done = lines = line_start = 0
            while done < limit and (chunk := stream.read(min(limit - done, 1 << 20))):
                if (last := chunk.rfind(b"\n")) >= 0:
                    lines += chunk.count(b"\n")
                    line_start = done + last + 1
                done += len(chunk)
            line, column = lines + 1, limit - line_start + 1
        except (OSError, ValueError):
            pass
    hint = ("; JSON documents may be larger" if what else
            " (use NDJSON, one investigation or alert per line, for large inputs)")
    return EvidenceError(f"{what}document is larger than the limit of {limit} bytes{hint}",
                         Location(name, line, column), code="too-large")


def _is_json_object_line(raw: bytes) -> bool:
    stripped = raw.strip()
    if stripped.startswith(b"\xef\xbb\xbf"):
        stripped = stripped[3:]
    if not (stripped.startswith(b"{") and stripped.endswith(b"}")):
        return False
    try:
        return isinstance(json.loads(stripped), dict)
    except (ValueError, RecursionError):  # broken, duplicate keys, bad UTF-8, too deep, too
        return False  # long a number: the whole-document path says which, with its location


def _ndjson(stream: IO[bytes], name: str, opened: _Opened, warn: Warn) -> Iterator[Evidence]:
    lines = 0
    for number, raw in _ndjson_lines(stream, name, opened):
        lines += 1
        yield from _ndjson_line(raw, name, number, warn)
    if not lines:
        warn(_no_lines(name))


def _no_lines(name: str) -> Finding:
    return Finding("warning", "no-evidence",
                   "no evidence read from this file: it holds no NDJSON lines", Location(name))


def _ndjson_lines(stream: IO[bytes], name: str, opened: _Opened) -> Iterator[tuple[int, bytes]]:
    """The non-blank lines of an NDJSON stream with their numbers, the peeked ones first."""
    yield from opened.lines
    lineno = opened.read
    while True:
        lineno += 1
        raw = _readline(stream, name, lineno)
        if not raw:
            return
        if not raw.isspace():
            yield lineno, raw


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
        raise Where(name, line=lineno, text=text).duplicate() from None
    except RecursionError:
        raise too_deep(text, name, lineno) from None
    except NonFinite:
        raise non_finite(text, name, lineno) from None
    except ValueError:  # an integer past Python's digit limit
        raise long_number(text, name, lineno) from None
    if too_deep_value(text, data):
        raise too_deep(text, name, lineno)
    where = Where(name, line=lineno, text=text)
    if JSON_HINT.search(text):
        data = scrub(data, where.exact, warn, name)
    if type(data) is not dict:
        raise EvidenceError(
            f"expected a JSON object on each line, got {kind_of(data)}",
            where.exact(()),
            code="shape",
        )
    items = to_evidence(data, where, warn)
    if not items and not may_go_on(data):
        warn(Finding("warning", "no-evidence",
                     f"no evidence read from this line: it holds {describe(data)}",
                     where.exact(())))
    return items


def _whole(text: str, name: str, suffix: str, warn: Warn) -> Iterator[Evidence]:
    if suffix not in YAML_SUFFIXES and text.lstrip()[:1] in ("{", "["):
        try:
            data = DECODER.decode(text)
        except json.JSONDecodeError as exc:
            raise EvidenceError(
                f"invalid JSON: {exc.msg}", Location(name, exc.lineno, exc.colno), code="json"
            ) from None
        except DuplicateKey:
            raise Where(name, text=text).duplicate() from None
        except RecursionError:
            raise too_deep(text, name) from None
        except NonFinite:
            raise non_finite(text, name) from None
        except ValueError:  # an integer past Python's digit limit
            raise long_number(text, name) from None
        if too_deep_value(text, data):
            raise too_deep(text, name)
        where = Where(name, text=text)
        if JSON_HINT.search(text):
            data = scrub(data, where.exact, warn, name)
        items = to_evidence(data, where, warn)
        if not items:
            _no_evidence(name, [describe(data)], warn)
        yield from items
        return
    if len(text) > MAX_YAML_BYTES // 4 and len(raw := text.encode("utf-8")) > MAX_YAML_BYTES:
        # Known as YAML only now (no .yaml suffix): its bound applies from here.
        raise _too_large(io.BytesIO(), raw, name, MAX_YAML_BYTES, "YAML ")
    documents = 0
    found = 0
    empty: list[str] = []  # what the documents that gave no evidence hold
    try:
        for doc in iter_documents(text, name, max_nodes=MAX_YAML_VALUES):
            documents += 1
            where = Where(name, doc=doc)
            data = doc.data
            if YAML_HINT.search(text):
                data = scrub(data, where.exact, warn, name)
            items = to_evidence(data, where, warn)
            if not items:
                empty.append(describe(data))
            found += len(items)
            yield from items
    except InputError as exc:
        raise EvidenceError(exc.message, exc.location, code=exc.code) from None
    if not documents:
        # Only null or empty documents: a file that says nothing is a mistake, not
        # "no threats found".
        raise EvidenceError("file holds no evidence document (only null or empty ones)",
                            Location(name, 1, 1), code="empty")
    if not found:
        _no_evidence(name, empty, warn)


def _no_evidence(name: str, holds: list[str], warn: Warn) -> None:
    """Say that a whole file gave no evidence at all, and what it holds instead."""
    shown = "; ".join(holds[:3]) + (f"; and {len(holds) - 3} more" if len(holds) > 3 else "")
    documents = "" if len(holds) == 1 else f" {len(holds)} documents:"
    warn(Finding("warning", "no-evidence",
                 f"no evidence read from this file: it holds{documents} {shown}",
                 Location(name)))
