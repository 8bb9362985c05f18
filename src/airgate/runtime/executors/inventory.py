"""Which executor runs each action type, and whether what it needs is there, read from
the config alone: ``airgate executors check`` calls nothing and reads no secret's value,
only whether the environment variable the config names is set and non-empty, or the file
it names exists and is readable (and whether others than its owner may read it)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airgate.runtime.config import Config, ExecutorConfig
from airgate.runtime.executors.credentials import credential_of

REMOTE = ("defender_endpoint", "graph_email", "graph_identity")


@dataclass(frozen=True)
class ExecutorCheck:
    """One action type: the executor the config gives it, where that executor acts, the
    environment variables or files it reads its secrets from (and which are there), what
    is missing (empty when it can run), and warnings that do not stop it."""

    action_type: str
    executor: str
    target: str
    secrets: Mapping[str, bool]
    problems: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"action_type": self.action_type, "executor": self.executor,
                "target": self.target, "secrets": dict(self.secrets), "ok": self.ok,
                "problems": list(self.problems), "warnings": list(self.warnings)}


def secret_envs(config: ExecutorConfig) -> tuple[str, ...]:
    """The environment variables the executor reads a secret from."""
    key = "client_secret_env" if config.type in REMOTE else "secret_env"
    if config.type in (*REMOTE, "http") and config.options.get(key):
        return (str(config.options[key]),)
    return ()


def _credential_check(config: ExecutorConfig) -> tuple[dict[str, bool], list[str], list[str]]:
    """What the executor reads its secret from: present?, problems, warnings."""
    if config.type in REMOTE:
        credential = credential_of(config.options)
        problems = credential.problems()
        ca_file = config.options.get("ca_file")
        if ca_file and not os.path.isfile(str(ca_file)):
            problems.append(f"the ca_file {ca_file} does not exist")
        return credential.present(), problems, credential.warnings()
    present = {env: bool(os.environ.get(env, "")) for env in secret_envs(config)}
    return present, [f"the environment variable {env} is not set"
                     for env, ok in present.items() if not ok], []


def target_of(config: ExecutorConfig) -> str:
    """Where the executor acts, from its config (never a secret: the config holds none)."""
    options = config.options
    if config.type == "command":
        return " ".join(config.argv[:1])
    if config.type == "http":
        return f"{options.get('method', 'POST')} {options.get('url', '')}"
    if config.type in REMOTE:
        from airgate.runtime.executors.endpoints import BASE_URLS

        base = str(options.get("base_url") or BASE_URLS[config.type])
        return f"{base} (tenant {options.get('tenant_id', '')})"
    return "the store (no external effect)"


def check(config: Config, action_types: Iterable[str]) -> list[ExecutorCheck]:
    """One check per action type, in the order given."""
    out = []
    for action_type in action_types:
        chosen = config.executor_for(action_type)
        present, problems, warnings = _credential_check(chosen)
        needed = ("httpx", "msal") if chosen.type in REMOTE else (
            ("httpx",) if chosen.type == "http" else ())
        missing = [name for name in needed if importlib.util.find_spec(name) is None]
        if missing:
            problems.append(f"{' and '.join(missing)} not installed: pip install"
                            " 'airgate[executors]'")
        out.append(ExecutorCheck(action_type, chosen.type, target_of(chosen), present,
                                 tuple(problems), tuple(warnings)))
    return out
