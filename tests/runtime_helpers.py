"""Shared builders for the runtime tests: decisions, a queue on a tmp SQLite file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airgate.model import Approval, Decision, EntityRef, Evidence
from airgate.runtime.clock import FixedClock
from airgate.runtime.config import Config
from airgate.runtime.queue import Queue
from airgate.runtime.store import Store

START = "2024-05-01T12:00:00Z"
AUTOMATION_IDS = frozenset({"bob"})
USERS = {
    "alice": ("active-remediation",),
    "carol": ("active-remediation",),
    "dave": ("search-and-purge",),
    "erin": ("security-admin",),
    "root": ("global-admin",),
}


def decision(
    key: str = "dev1",
    action: str = "isolate_device",
    *,
    entity_type: str = "device",
    investigation: str = "inv1",
    roles: tuple[str, ...] = ("active-remediation",),
    fields: dict[str, Any] | None = None,
    source: str = "automatedInvestigation",
    rules: tuple[str, ...] = ("r.isolate",),
    **approval: Any,
) -> Decision:
    extra = {k: approval.pop(k) for k in ("revert_after", "max_automatic_per_hour",
                                          "suppressed_by") if k in approval}
    ev = Evidence(investigation, entity_type, "malicious", key, f"name-{key}",
                  fields or {"id": key}, action_source=source)
    return Decision(investigation, EntityRef(entity_type, key, f"name-{key}"), action,
                    Approval(roles=roles, **approval), rules, evidence=ev, **extra)


def make_queue(tmp_path: Path, *, users: dict[str, tuple[str, ...]] | None = None,
               **kwargs: Any) -> tuple[Queue, FixedClock]:
    clock = FixedClock(START)
    store = Store(tmp_path / "airgate.db", busy_timeout=2)
    # bob stands for the SOAR connector: his submissions keep the evidence's action source.
    config = kwargs.pop("config", None) or Config(users=USERS if users is None else users,
                                                  automation=AUTOMATION_IDS)
    return Queue(store, config=config, clock=clock, **kwargs), clock


def events(queue: Queue, action_id: int) -> list[tuple[str, str | None, str | None]]:
    return [(e.event, e.state_before, e.state_after) for e in queue.ledger_entries(action_id)]


def clean_postgres_url() -> str:
    """The test PostgreSQL URL with airgate's tables dropped; skips the test without one."""
    import os

    import pytest

    url = os.environ.get("AIRGATE_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("set AIRGATE_TEST_POSTGRES_URL to run against PostgreSQL")
    pytest.importorskip("psycopg")
    from sqlalchemy import create_engine, text

    from airgate.runtime.store.schema import TABLES

    engine = create_engine(url)
    with engine.begin() as conn:  # a clean database for this test
        for table in reversed(TABLES):
            conn.execute(text(f"DROP TABLE IF EXISTS {table.name}"))
    engine.dispose()
    return url
