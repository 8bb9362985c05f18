"""The runtime configuration (airgate.yaml): users and their roles, executors, the store.

Found at ``--config PATH``, else ``AIRGATE_CONFIG``, else ``./airgate.yaml`` when
that file exists; without one, nobody holds a role (so nothing can be approved
by hand) and every action type uses the ``record`` executor.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from airgate.catalog import BUILTIN_ROLES
from airgate.errors import InputError, Location
from airgate.policy.durations import parse_duration
from airgate.policy.yamlsrc import Document, load_documents, read_text

ENV_CONFIG = "AIRGATE_CONFIG"
DEFAULT_CONFIG = "airgate.yaml"
DEFAULT_TIMEOUT = 60


@dataclass(frozen=True)
class ExecutorConfig:
    type: Literal["record", "command"] = "record"
    argv: tuple[str, ...] = ()
    timeout: int = DEFAULT_TIMEOUT


RECORD = ExecutorConfig()


@dataclass(frozen=True)
class Config:
    users: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    executors: Mapping[str, ExecutorConfig] = field(default_factory=dict)
    store: str | None = None
    file: str | None = None

    def roles_of(self, actor: str) -> tuple[str, ...]:
        return self.users.get(actor, ())

    def executor_for(self, action_type: str) -> ExecutorConfig:
        return self.executors.get(action_type) or self.executors.get("default") or RECORD


def _schema() -> dict[str, Any]:
    text = resources.files("airgate").joinpath("schemas/config.schema.json").read_text("utf-8")
    return dict(json.loads(text))


def find_config(path: str | os.PathLike[str] | None = None) -> str | None:
    """The config file to read, or None when there is none to read."""
    if path is not None:
        return os.fspath(path)
    env = os.environ.get(ENV_CONFIG, "").strip()
    if env:
        return env
    return DEFAULT_CONFIG if Path(DEFAULT_CONFIG).is_file() else None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate the config; raises InputError with file:line:col on any fault."""
    file = find_config(path)
    if file is None:
        return Config()
    text = read_text(file, what="config file")
    docs = load_documents(text, file)
    if len(docs) != 1:
        raise InputError("a config file holds exactly one YAML document", Location(file, 1, 1))
    doc = docs[0]
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(doc.data), key=lambda e: list(e.absolute_path))
    if errors:
        err = min(errors, key=lambda e: len(list(e.absolute_path)))
        path_ = tuple(err.absolute_path)
        raise InputError(f"{err.message}", doc.locate(path_), code="config")
    data: Mapping[str, Any] = doc.data
    executors: dict[str, ExecutorConfig] = {}
    for action_type, spec in (data.get("executors") or {}).items():
        timeout = parse_duration(spec["timeout"]) if "timeout" in spec else DEFAULT_TIMEOUT
        executors[action_type] = ExecutorConfig(spec["type"], tuple(spec.get("argv", ())), timeout)
    store = data.get("store")
    if store is not None and "://" not in store:
        store = str((Path(file).parent / store).absolute())
    users = {name: tuple(roles) for name, roles in (data.get("users") or {}).items()}
    _check_roles(doc, users, tuple(data.get("roles") or ()))
    return Config(MappingProxyType(users), MappingProxyType(executors), store, file)


def _check_roles(doc: Document, users: Mapping[str, tuple[str, ...]],
                 custom: tuple[str, ...]) -> None:
    """A misspelt role would silently grant nothing: every role must be built in or declared.

    The config cannot know the policies' custom action types (it is read without them),
    so custom roles are declared under ``roles:``; policy lint warns about a policy role
    that is not built in.
    """
    known = BUILTIN_ROLES + custom
    for name, roles in users.items():
        for i, role in enumerate(roles):
            if role in known:
                continue
            close = difflib.get_close_matches(role, known, n=1)
            hint = (f"did you mean {close[0]!r}?" if close else
                    f"built in: {', '.join(BUILTIN_ROLES)}; declare a custom role under roles:")
            raise InputError(f"unknown role {role!r} for user {name!r} ({hint})",
                             doc.locate(("users", name, i)), code="config")
