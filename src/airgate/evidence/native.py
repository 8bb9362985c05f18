"""Validation of airgate's native Investigation documents against evidence.schema.json.

A hand-written check accepts the common, valid shape in a few microseconds; only a
document it does not accept goes through jsonschema (imported then), which has the
last word and gives the message. So the schema decides, and large NDJSON streams
do not pay for it.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from airgate.catalog import ENTITY_TYPES
from airgate.policy.yamlsrc import Path

SOURCES = frozenset({"automatedInvestigation", "antivirus", "manual"})
_TOP_KEYS = frozenset({"apiVersion", "kind", "id", "source", "description", "evidence"})
_ITEM_KEYS = frozenset({"type", "verdict", "name", "fields"})
_ITEM_REQUIRED = frozenset({"type", "verdict", "fields"})
_MAX_MESSAGE = 200


def load_schema() -> dict[str, Any]:
    text = resources.files("airgate").joinpath("schemas/evidence.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


class NativeChecker:
    def __init__(self) -> None:
        self._validator: Any = None

    @staticmethod
    def quick_valid(data: dict[str, Any]) -> bool:
        """True only for documents the schema accepts (a sufficient test, not a necessary one)."""
        # Key sets compared as views: no set is built per document or item.
        if not data.keys() <= _TOP_KEYS or data.get("apiVersion") != "airgate/v1":
            return False
        if data.get("kind") != "Investigation":
            return False
        ident = data.get("id")
        if type(ident) is not str or not ident:
            return False
        source = data.get("source", "automatedInvestigation")
        if type(source) is not str or source not in SOURCES:
            return False
        if type(data.get("description", "")) is not str:
            return False
        items = data.get("evidence")
        if type(items) is not list:
            return False
        for item in items:
            if type(item) is not dict or not _ITEM_REQUIRED <= item.keys() <= _ITEM_KEYS:
                return False
            entity_type = item["type"]
            if type(entity_type) is not str or entity_type not in ENTITY_TYPES:
                return False
            verdict = item["verdict"]
            if type(verdict) is not str or not verdict:
                return False
            if type(item["fields"]) is not dict or type(item.get("name", "")) is not str:
                return False
        return True

    def first_error(self, data: dict[str, Any]) -> tuple[str, Path, bool] | None:
        """The most relevant schema error: (message, path, whether to point at the key)."""
        if self._validator is None:
            from jsonschema import Draft202012Validator

            self._validator = Draft202012Validator(load_schema())
        from jsonschema.exceptions import best_match

        error = best_match(self._validator.iter_errors(data))
        if error is None:
            return None
        path: Path = tuple(error.absolute_path)
        validator, instance = error.validator, error.instance
        if validator == "required":
            missing = [k for k in error.validator_value if k not in instance]
            names = ", ".join(repr(k) for k in missing)
            plural = "s" if len(missing) > 1 else ""
            return f"missing required field{plural} {names}", path, False
        if validator == "additionalProperties":
            allowed = set(error.schema.get("properties", {}))
            extra = sorted(k for k in instance if k not in allowed)
            return (
                f"unknown field {extra[0]!r} (allowed: {', '.join(sorted(allowed))})",
                (*path, extra[0]),
                True,
            )
        if validator == "enum" and path and path[-1] == "type":
            return f"unknown entity type {_short(instance)}", path, False
        if validator == "const":
            return f"must be {error.validator_value!r}, got {_short(instance)}", path, False
        if validator == "type":
            return f"must be {_article(error.validator_value)}, got {_short(instance)}", path, False
        if validator == "minLength":
            return "must not be empty", path, False
        return _cut(error.message), path, False


def _article(kind: object) -> str:
    names = {"object": "an object", "array": "a list", "string": "a string"}
    return names.get(str(kind), str(kind))


def _short(value: object) -> str:
    return _cut(repr(value))


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."
