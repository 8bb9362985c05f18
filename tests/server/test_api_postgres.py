"""The API over a PostgreSQL store: tokens, the pushed config's roles, cursors."""

from __future__ import annotations

from pathlib import Path

import pytest

from airgate.runtime.governance import push_config
from server_helpers import investigation, serve

pytestmark = pytest.mark.postgres

USERS = {"users": {"alice": ["active-remediation"], "root": ["global-admin"]}}


def test_the_api_works_the_same_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    with serve(tmp_path, db=postgres_url) as srv:
        # On PostgreSQL only a pushed config gives roles; a local file never does.
        denied = srv.client.get("/api/v1/whoami", headers=srv.as_("alice")).json()
        assert denied["roles"] == []
        push_config(srv.ctx.store, USERS, actor="root", at="2024-05-01T12:00:00.000000Z")
        assert srv.client.get("/api/v1/whoami",
                              headers=srv.as_("alice")).json()["roles"] == ["active-remediation"]
        for n in range(3):
            srv.submit(investigation(f"inv-{n}", device=f"d{n}", name=f"ws{n}"))
        h = srv.as_("alice")
        first = srv.client.get("/api/v1/actions", params={"limit": 2}, headers=h).json()
        rest = srv.client.get("/api/v1/actions", params={"cursor": first["next_cursor"]},
                              headers=h).json()
        assert [a["id"] for a in first["items"] + rest["items"]] == [1, 3, 5]
        done = srv.client.post("/api/v1/actions/approve", json={"ids": [1]}, headers=h)
        assert done.status_code == 200 and done.json()[0]["status"] == "completed"
        assert srv.client.get("/api/v1/ledger/verify", headers=h).json()["ok"] is True
