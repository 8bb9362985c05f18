"""Turn JSON Schema errors into findings that point at the YAML node at fault.

jsonschema gives each error a JSON path into the document; the document knows
where every path came from in the file. Messages are rewritten to say what to
fix, and ``oneOf`` failures are narrowed to the branch the author meant.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from airgate.errors import Finding
from airgate.policy.yamlsrc import Document

# Durations and dates have their own checks in airgate.lint (bad-duration,
# bad-date) with better messages; the schema's pattern for them is not repeated.
_LINTED_PATTERNS = frozenset({"^[1-9][0-9]{0,8}[smhdw]$", "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"})

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "null": "null",
}

_validators: dict[int, Draft202012Validator] = {}


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    key = id(schema)
    if key not in _validators:
        _validators[key] = Draft202012Validator(schema)
    return _validators[key]


def schema_findings(doc: Document, schema: dict[str, Any]) -> list[Finding]:
    """Every schema error of one document, as findings located in its file."""
    findings: list[Finding] = []
    for error in _validator(schema).iter_errors(doc.data):
        findings.extend(_findings(doc, error))
    return findings


def _path(error: ValidationError) -> tuple[str | int, ...]:
    return tuple(error.absolute_path)


def _findings(doc: Document, error: ValidationError) -> Iterator[Finding]:
    if error.validator in ("oneOf", "anyOf"):
        narrowed = _narrow(error)
        if narrowed:
            for sub in narrowed:
                yield from _findings(doc, sub)
            return
    if (
        error.validator in ("pattern", "type")
        and isinstance(error.schema, dict)
        and error.schema.get("pattern") in _LINTED_PATTERNS
    ):
        return
    path = _path(error)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(error.schema.get("properties", {})) if isinstance(error.schema, dict) else []
        for key in error.instance:
            if key not in known:
                yield Finding(
                    "error", "unknown-key", _unknown_key(str(key), known),
                    doc.locate(path + (key,), key=True),
                )
        return
    yield Finding("error", "schema", _message(error), doc.locate(path))


def _unknown_key(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"unknown key {key!r} (did you mean {close[0]!r}?)"
    return f"unknown key {key!r} (expected one of: {', '.join(known)})"


def _narrow(error: ValidationError) -> list[ValidationError]:
    """The errors of the one branch whose type fits the value, if exactly one does."""
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context or []:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [
        errs
        for errs in branches.values()
        if not any(e.validator == "type" and _path(e) == _path(error) for e in errs)
    ]
    if len(fitting) == 1:
        return fitting[0]
    return []


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _types(error: ValidationError) -> str:
    """What types a oneOf/type error accepts, in words."""
    wanted: list[str] = []
    if error.validator == "type":
        types = error.validator_value
        wanted = [types] if isinstance(types, str) else list(types)
    else:
        for branch in error.validator_value:
            t = branch.get("type") if isinstance(branch, dict) else None
            if isinstance(t, str):
                wanted.append(t)
            elif "$ref" in branch:
                wanted.append(branch["$ref"].rsplit("/", 1)[-1])
    names = [_TYPE_NAMES.get(t, f"a {t}") for t in wanted]
    return " or ".join(dict.fromkeys(names)) or "a different value"


def _message(error: ValidationError) -> str:
    v, value, inst = error.validator, error.validator_value, error.instance
    if v == "required":
        missing = [k for k in value if not (isinstance(inst, dict) and k in inst)]
        return "missing required key " + ", ".join(repr(k) for k in missing)
    if v == "const":
        return f"expected {value!r}, got {_describe(inst)}"
    if v == "enum":
        return f"{_describe(inst)} is not one of: {', '.join(str(x) for x in value)}"
    if v in ("type", "oneOf", "anyOf"):
        return f"expected {_types(error)}, got {_describe(inst)}"
    if v == "pattern":
        return f"{_describe(inst)} does not match the pattern {value}"
    if v == "minItems":
        return f"needs at least {value} item{'s' if value != 1 else ''}"
    if v == "minLength":
        return "must not be empty"
    if v == "minimum":
        return f"must be at least {value}, got {_describe(inst)}"
    if v == "uniqueItems":
        return "items must be unique"
    return str(error.message)
