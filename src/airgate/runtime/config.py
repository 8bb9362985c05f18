"""The runtime configuration (airgate.yaml): users and their roles, executors, the store.

Found at ``--config PATH``, else ``AIRGATE_CONFIG``, else ``./airgate.yaml`` when
that file exists; without one, nobody holds a role (so nothing can be approved
by hand) and every action type uses the ``record`` executor.

The users, roles, automation identities and executors are the *governing* part:
once a global admin pushed them into a store (``airgate config push``), the
store's copy governs it and a local file may only name the store.

Actor names are compared in one normal form (:func:`normalize_actor`): NFKC,
case-folded, whitespace collapsed, so ``Alice`` and ``alice`` are one person.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import unicodedata
from collections.abc import Callable, Mapping
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
# the keys a pushed config owns (notifications: where alerts about actions go)
# (execution: inline or worker, who carries approved work out: the team decides, not a
# file each analyst picks)
GOVERNING = ("users", "roles", "automation", "executors", "database_users", "notifications",
             "execution")
INLINE = "inline"
WORKER = "worker"


def normalize_actor(name: str) -> str:
    """The one spelling of an actor name airgate stores and compares.

    NFKC folds compatibility forms (fullwidth letters, ligatures), ``casefold`` folds
    case beyond ASCII, and runs of whitespace become one space, trimmed at both ends.
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return " ".join(folded.split())


@dataclass(frozen=True)
class ExecutorConfig:
    """One executor: its type, a command's argv, its time-out in seconds, and the settings
    of the other types (``options``: for Microsoft's APIs tenant_id, client_id,
    client_secret_env or client_secret_file or certificate_file (and private_key_file),
    ca_file, base_url, authority, isolation_type, scan_type, poll_interval, retries,
    severity; for ``http`` url, method, headers, secret_env). Never a secret itself, only
    the name of the environment variable or the file that holds it."""

    type: Literal["record", "command", "defender_endpoint", "graph_email",
                  "graph_identity", "http"] = "record"
    argv: tuple[str, ...] = ()
    timeout: int = DEFAULT_TIMEOUT
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NotifyConfig:
    """The webhook called when an action waits for approval, expires or fails to run.

    ``secret_env`` names the environment variable holding the signing secret (never the
    secret itself); ``link`` is a URL template whose ``{id}`` is the action's id."""

    url: str
    secret_env: str
    events: tuple[str, ...] = ("pending", "expired", "failed")
    link: str | None = None
    timeout: float = 10.0


RECORD = ExecutorConfig()


@dataclass(frozen=True)
class Config:
    """Who holds which role, which executor runs each action type, where the store is.

    ``users`` keys are normalized actor names. ``automation``: the identities whose
    submissions are automated investigations (a SOAR connector); everyone else's
    submissions are manual. ``governed_by``: set when the governing part came from
    the store (``{"updated_by", "updated_at", "sha256"}``), not from a file.
    """

    users: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    executors: Mapping[str, ExecutorConfig] = field(default_factory=dict)
    store: str | None = None
    file: str | None = None
    automation: frozenset[str] = frozenset()
    governed_by: Mapping[str, Any] | None = None
    data: Mapping[str, Any] = field(default_factory=dict)  # the governing part, as JSON
    database_users: Mapping[str, str] = field(default_factory=dict)  # PostgreSQL -> actor
    notifications: NotifyConfig | None = None
    execution: str = INLINE  # or WORKER: approve and undo leave the run to `airgate worker`

    def __post_init__(self) -> None:
        # A Config built in code (tests, scripts) compares names as a loaded one does.
        object.__setattr__(self, "users", MappingProxyType(
            {normalize_actor(k): tuple(v) for k, v in self.users.items()}))
        object.__setattr__(self, "automation",
                           frozenset(normalize_actor(n) for n in self.automation))

    def roles_of(self, actor: str) -> tuple[str, ...]:
        return self.users.get(normalize_actor(actor), ())

    def is_automation(self, actor: str) -> bool:
        return normalize_actor(actor) in self.automation

    def sets_governing(self) -> bool:
        """Whether this config names any users, automation identities or executors."""
        return any(self.data.get(k) for k in GOVERNING)

    def governed(self, stored: Mapping[str, Any], *, updated_by: str,
                 updated_at: str) -> Config:
        """This config with its governing part replaced by the one stored in the store."""
        base = config_from_data(stored, None)
        return Config(base.users, base.executors, self.store, self.file, base.automation,
                      MappingProxyType({"updated_by": updated_by, "updated_at": updated_at,
                                        "sha256": governing_hash(stored)}), base.data,
                      base.database_users, base.notifications, base.execution)

    def actor_of_database_user(self, db_user: str) -> str:
        """The actor a PostgreSQL user acts as: its ``database_users`` entry, else itself."""
        return self.database_users.get(db_user, db_user)

    @property
    def by_worker(self) -> bool:
        """Whether ``airgate worker`` processes, not the approver's, carry out the work."""
        return self.execution == WORKER

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


def governing_hash(data: Mapping[str, Any]) -> str:
    """SHA-256 of the governing part's canonical JSON: what the ledger records of a push."""
    part = {k: data[k] for k in GOVERNING if k in data}
    text = json.dumps(part, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
        # the nearest error; a wrong key before "which credential" (it may be the reason)
        err = min(errors, key=lambda e: (len(list(e.absolute_path)), e.validator == "oneOf"))
        path_ = tuple(err.absolute_path)
        raise InputError(_message(err), doc.locate(path_), code="config")
    _check_names(doc.data, lambda path: doc.locate(path, key=True))
    _check_roles(doc)
    return config_from_data(doc.data, file)


CREDENTIALS = ("client_secret_env", "client_secret_file", "certificate_file")


def _message(err: Any) -> str:
    """jsonschema's message, but a credential choice said in words (its own repeats the
    whole executor entry)."""
    instance = err.instance
    if err.validator == "oneOf" and isinstance(instance, Mapping) and "tenant_id" in instance:
        given = [k for k in CREDENTIALS if k in instance]
        return (f"give exactly one of {', '.join(CREDENTIALS)} (the credential's variable or"
                f" file, never the secret), not {' and '.join(given) if given else 'none'}")
    return str(err.message)


def _check_names(data: Mapping[str, Any],
                 locate: Callable[[tuple[Any, ...]], Location]) -> None:
    """Two user names that normalize alike would count as two approvers: refuse them."""
    for section in ("users", "automation"):
        value = data.get(section) or {}
        names = list(value) if isinstance(value, Mapping) else list(value)
        seen: dict[str, str] = {}
        for index, name in enumerate(names):
            norm = normalize_actor(name)
            path = (section, name) if isinstance(value, Mapping) else (section, index)
            if not norm:
                raise InputError(f"{section}: the name {name!r} is empty once whitespace is"
                                 " stripped", locate(path), code="config")
            if norm in seen:
                raise InputError(
                    f"{section}: {name!r} and {seen[norm]!r} are the same actor ({norm!r}"
                    " once case, Unicode form and whitespace are normalized)",
                    locate(path), code="config")
            seen[norm] = name


def config_from_data(data: Mapping[str, Any], file: str | None) -> Config:
    """A Config from a validated document (a file's, or the governing part from a store)."""
    executors: dict[str, ExecutorConfig] = {}
    for action_type, spec in (data.get("executors") or {}).items():
        timeout = parse_duration(spec["timeout"]) if "timeout" in spec else DEFAULT_TIMEOUT
        options = MappingProxyType({k: v for k, v in spec.items()
                                    if k not in ("type", "argv", "timeout")})
        executors[action_type] = ExecutorConfig(spec["type"], tuple(spec.get("argv", ())), timeout,
                                                options)
    store = data.get("store")
    if store is not None and "://" not in store and file is not None:
        store = str((Path(file).parent / store).absolute())
    users = {normalize_actor(name): tuple(roles)
             for name, roles in (data.get("users") or {}).items()}
    automation = frozenset(normalize_actor(n) for n in data.get("automation") or ())
    governing = {k: data[k] for k in GOVERNING if k in data}
    mapped = {k: normalize_actor(v) for k, v in (data.get("database_users") or {}).items()}
    return Config(MappingProxyType(users), MappingProxyType(executors), store, file,
                  automation, None, MappingProxyType(governing), MappingProxyType(mapped),
                  _notify_config(data.get("notifications")),
                  str(data.get("execution") or INLINE))


def _notify_config(spec: Mapping[str, Any] | None) -> NotifyConfig | None:
    if not spec:
        return None
    timeout = float(parse_duration(spec["timeout"])) if "timeout" in spec else 10.0
    return NotifyConfig(spec["url"], spec["secret_env"],
                        tuple(spec.get("events", ("pending", "expired", "failed"))),
                        spec.get("link"), timeout)


def _check_roles(doc: Document) -> None:
    """A misspelt role would silently grant nothing: every role must be built in or declared.

    The config cannot know the policies' custom action types (it is read without them),
    so custom roles are declared under ``roles:``; policy lint warns about a policy role
    that is not built in.
    """
    known = BUILTIN_ROLES + tuple(doc.data.get("roles") or ())
    for name, roles in (doc.data.get("users") or {}).items():
        for i, role in enumerate(roles):
            if role in known:
                continue
            close = difflib.get_close_matches(role, known, n=1)
            hint = (f"did you mean {close[0]!r}?" if close else
                    f"built in: {', '.join(BUILTIN_ROLES)}; declare a custom role under roles:")
            raise InputError(f"unknown role {role!r} for user {name!r} ({hint})",
                             doc.locate(("users", name, i)), code="config")
