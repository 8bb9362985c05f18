"""Where a parsed evidence document came from, and how errors in it are located."""

from __future__ import annotations

from airgate.errors import EvidenceError, Location, format_json_path
from airgate.policy.jsonsrc import positions
from airgate.policy.yamlsrc import Document, Path


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
