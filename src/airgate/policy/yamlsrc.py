"""Strict, bounded YAML loading that remembers where every value came from.

PyYAML's ``compose`` gives a node tree with a ``start_mark`` on every node; we
build plain Python data from it ourselves so that we control every step: only
the core tags, no duplicate keys, bounded alias expansion and nesting, and a
map from JSON path to line and column for error messages.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from airgate.errors import InputError, Location

MAX_FILE_BYTES = 1024 * 1024  # policies and test suites; documented in the README
MAX_NODES = 200_000  # nodes built per document, aliases included ("billion laughs")
MAX_DEPTH = 64

Path = tuple[str | int, ...]

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"

_constructor = SafeConstructor()


@dataclass
class Document:
    """One YAML document: its data and where each part of it stands in the file."""

    data: Any
    file: str
    index: int = 0
    value_marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path, *, key: bool = False) -> Location:
        """The location of the value at ``path`` (or of its key), or of its nearest ancestor."""
        marks = self.key_marks if key else self.value_marks
        probe = tuple(path)
        while True:
            if probe in marks:
                line, col = marks[probe]
                return Location(self.file, line, col, tuple(path))
            if probe in self.value_marks:
                line, col = self.value_marks[probe]
                return Location(self.file, line, col, tuple(path))
            if not probe:
                return Location(self.file, 1, 1, tuple(path))
            probe = probe[:-1]


def read_text(path: str, *, max_bytes: int = MAX_FILE_BYTES, what: str = "file") -> str:
    """Read a UTF-8 file with a size limit and a clear error for each way it can fail."""
    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise InputError(
                f"{what} is {size} bytes, above the limit of {max_bytes} bytes",
                Location(path),
                code="too-large",
            )
        with open(path, "rb") as handle:
            raw = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise InputError(f"no such {what}", Location(path), code="not-found") from None
    except IsADirectoryError:
        raise InputError("is a directory", Location(path), code="not-found") from None
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror}", Location(path)) from None
    return decode(raw, path, what=what)


def decode(raw: bytes, file: str, *, what: str = "file") -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise InputError(
            f"{what} is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            Location(file, line, col),
            code="encoding",
        ) from None
    if not text.strip():
        raise InputError(f"{what} is empty", Location(file, 1, 1), code="empty")
    return text


def load_documents(text: str, file: str = "<input>") -> list[Document]:
    """Parse every document of a YAML stream strictly. Empty documents are skipped."""
    return list(iter_documents(text, file))


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's loader, counting nodes and depth while it composes: the bounds of
    :class:`_Builder` alone would only apply once the whole node tree is in memory (a
    4 MiB flow list of ones took a minute and 1.4 GB before its refusal)."""

    def __init__(self, stream: str, file: str, max_nodes: int):
        super().__init__(stream)
        self.file, self.max_nodes = file, max_nodes
        self.nodes = self.depth = 0

    def compose_document(self) -> yaml.Node | None:
        self.nodes = 0
        return super().compose_document()

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        # Keys are not counted, as the builder counts values only.
        if not (isinstance(parent, yaml.MappingNode) and index is None):
            self.nodes += 1
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        if self.nodes > self.max_nodes:
            raise InputError(
                f"document holds more than {self.max_nodes} values",
                Location(self.file, mark.line + 1, mark.column + 1), code="too-large")
        if self.depth > MAX_DEPTH:
            raise InputError(f"nesting deeper than {MAX_DEPTH} levels",
                             Location(self.file, mark.line + 1, mark.column + 1),
                             code="too-deep")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def iter_documents(text: str, file: str = "<input>", *,
                   max_nodes: int | None = None) -> Iterator[Document]:
    """The documents of a YAML stream, one at a time; ``max_nodes``: the values one
    document may hold, aliases expanded (``MAX_NODES`` when None)."""
    bound = MAX_NODES if max_nodes is None else max_nodes
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text, file, bound)
        index = -1
        while loader.check_node():
            index += 1
            node = loader.get_node()
            if node is None:
                continue
            doc = Document(None, file, index)
            builder = _Builder(doc, bound)
            doc.data = builder.build(node, (), 0)
            if doc.data is not None:  # an empty document between two '---'
                yield doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        raise InputError(f"invalid YAML: {problem}", loc, code="yaml") from None
    except yaml.reader.ReaderError as exc:
        # A control or binary character: name it and say where, on one line.
        before = text[: exc.position]
        loc = Location(file, before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1)
        char = exc.character
        if not isinstance(char, int):
            char = ord(str(char)[:1] or "?")
        raise InputError(
            f"invalid YAML: unacceptable character #x{char:04x} (control or binary data)",
            loc,
            code="yaml",
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", Location(file), code="yaml") from None
    except RecursionError:
        raise InputError("YAML nesting is too deep", Location(file), code="too-deep") from None
    finally:
        if loader is not None:
            loader.dispose()


class _Builder:
    def __init__(self, doc: Document, max_nodes: int = MAX_NODES):
        self.doc = doc
        self.max_nodes = max_nodes
        self.count = 0
        self.active: set[int] = set()

    def _loc(self, node: yaml.Node, path: Path) -> Location:
        return Location(self.doc.file, node.start_mark.line + 1, node.start_mark.column + 1, path)

    def build(self, node: yaml.Node, path: Path, depth: int) -> Any:
        self.count += 1
        if self.count > self.max_nodes:
            raise InputError(
                f"document expands to more than {self.max_nodes} values"
                " (alias expansion is bounded)",
                self._loc(node, path),
                code="too-large",
            )
        if depth > MAX_DEPTH:
            raise InputError(
                f"nesting deeper than {MAX_DEPTH} levels", self._loc(node, path), code="too-deep"
            )
        self.doc.value_marks.setdefault(
            path, (node.start_mark.line + 1, node.start_mark.column + 1)
        )
        if id(node) in self.active:
            raise InputError("recursive alias", self._loc(node, path), code="yaml")
        if isinstance(node, yaml.ScalarNode):
            if node.tag not in _SCALAR_TAGS:
                raise InputError(
                    f"tag {node.tag!r} is not allowed (only plain YAML data is)",
                    self._loc(node, path),
                    code="yaml-tag",
                )
            if node.tag == "tag:yaml.org,2002:timestamp":
                # Dates stay text: the schema checks their format, and the model parses them.
                return str(node.value)
            if node.tag == "tag:yaml.org,2002:float" and node.value.lower().lstrip("+-") in (
                ".nan", ".inf"
            ):
                # Not a JSON number: it would make airgate's own JSON output invalid.
                raise InputError(
                    f"{node.value} is not allowed (NaN and infinity are not JSON numbers)",
                    self._loc(node, path),
                    code="yaml",
                )
            try:
                value = _constructor.construct_object(node, deep=True)
            except ValueError:
                # Python refuses integers past sys.get_int_max_str_digits() (4300) digits.
                digits = sum(ch.isdigit() for ch in str(node.value))
                raise InputError(
                    f"number with {digits} digits is too long", self._loc(node, path),
                    code="too-large",
                ) from None
            if isinstance(value, float) and not math.isfinite(value):
                # 1.0e+400: no double holds it, and infinity is not a JSON number.
                raise InputError(
                    f"{node.value} is beyond the range of a double (it would be read as"
                    " infinity, which is not a JSON number)",
                    self._loc(node, path), code="yaml")
            return value
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ_TAG:
                    raise InputError(
                        f"tag {node.tag!r} is not allowed", self._loc(node, path), code="yaml-tag"
                    )
                return [
                    self.build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)
                ]
            if isinstance(node, yaml.MappingNode):
                if node.tag != _MAP_TAG:
                    raise InputError(
                        f"tag {node.tag!r} is not allowed", self._loc(node, path), code="yaml-tag"
                    )
                return self._mapping(node, path, depth)
        finally:
            self.active.discard(id(node))
        raise InputError("unsupported YAML node", self._loc(node, path), code="yaml")

    def _mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise InputError(
                    "merge keys (<<) are not supported", self._loc(key_node, path), code="yaml"
                )
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _SCALAR_TAGS:
                raise InputError(
                    "mapping keys must be plain scalars", self._loc(key_node, path), code="yaml"
                )
            key = str(key_node.value)
            child = path + (key,)
            if key in out:
                first = self.doc.key_marks.get(child)
                where = f" (first defined on line {first[0]})" if first else ""
                raise InputError(
                    f"duplicate key {key!r}{where}",
                    self._loc(key_node, child),
                    code="duplicate-key",
                )
            self.doc.key_marks[child] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            out[key] = self.build(value_node, child, depth + 1)
        return out
