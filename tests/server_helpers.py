"""A server over a tmp SQLite store with users and tokens, for the API tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from airgate.runtime import tokens
from airgate.runtime.clock import FixedClock
from airgate.server.app import create_app
from airgate.server.context import ServerSettings
from runtime_helpers import START, open_store

POLICY = """\
apiVersion: airgate/v1
kind: Policy
metadata: {name: t}
spec:
  rules:
    - id: t.isolate
      match: {verdict: [malicious, suspicious], entity: device}
      action: isolate_device
      approval: required
    - id: t.quarantine
      match: {verdict: malicious, entity: file}
      action: quarantine_file
      approval: auto
      revert_after: 24h
    - id: t.no-dc
      effect: exclude
      reason: never isolate a domain controller
      match: {entity: device, where: {field: deviceDnsName, glob: "dc*"}}
      actions: [isolate_device]
"""

CONFIG = """\
users:
  alice: [active-remediation]
  carol: [active-remediation]
  dave: [search-and-purge]
  root: [global-admin]
"""


def investigation(inv: str = "inv-7", device: str = "d1", name: str = "ws1") -> dict[str, Any]:
    return {"apiVersion": "airgate/v1", "kind": "Investigation", "id": inv, "evidence": [
        {"type": "device", "verdict": "malicious", "name": name,
         "fields": {"mdeDeviceId": device, "deviceDnsName": name}},
        {"type": "device", "verdict": "malicious", "name": "dc01",
         "fields": {"mdeDeviceId": "dc", "deviceDnsName": "dc01"}},
        {"type": "file", "verdict": "malicious", "name": "evil.exe",
         "fields": {"mdeDeviceId": device, "fileDetails": {"sha256": "aa11"}}},
    ]}


class Server:
    """A TestClient over a fresh store; ``as_(name)`` gives the headers of a token of theirs."""

    def __init__(self, tmp: Path, client: TestClient, clock: FixedClock) -> None:
        self.tmp = tmp
        self.client = client
        self.clock = clock
        self.ctx = client.app.state.airgate  # type: ignore[attr-defined]
        self._tokens: dict[str, str] = {}

    def token(self, actor: str, **kwargs: Any) -> str:
        raw, _ = tokens.create(self.ctx.store, actor=actor, by="root", now=self.clock.now(),
                               **kwargs)
        return raw

    def as_(self, actor: str) -> dict[str, str]:
        if actor not in self._tokens:
            self._tokens[actor] = self.token(actor)
        return {"Authorization": f"Bearer {self._tokens[actor]}"}

    def submit(self, doc: Any, actor: str = "bob") -> Any:
        response = self.client.post("/api/v1/evidence", content=json.dumps(doc),
                                    headers={**self.as_(actor),
                                             "Content-Type": "application/json"})
        assert response.status_code == 200, response.text
        return response.json()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)


@contextmanager
def serve(tmp: Path, *, worker: bool = False, policy: str = POLICY, config: str = CONFIG,
          **settings: Any) -> Iterator[Server]:
    (tmp / "policy.yaml").write_text(policy)
    (tmp / "airgate.yaml").write_text(config)
    clock = FixedClock(START)
    settings.setdefault("db", str(tmp / "q.db"))
    app = create_app(ServerSettings(policy_paths=(str(tmp / "policy.yaml"),),
                                    config_path=str(tmp / "airgate.yaml"), worker=worker,
                                    clock=clock, **settings))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Server(tmp, client, clock)


def store_at(tmp: Path) -> Any:
    return open_store(tmp / "q.db")
