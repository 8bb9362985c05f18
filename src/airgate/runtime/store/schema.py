"""The store's tables and its versioned migrations (SQLAlchemy Core, SQLite and PostgreSQL).

Times are stored as fixed-width ISO 8601 text in UTC (``clock.format_time``), so
they sort as text, compare the same on both databases and hash the same in
the ledger. Identifiers of actions and ledger entries are assigned by airgate
under the write lock, not by the database, so that a batch of thousands of
actions and their ledger entries is written with a few ``executemany`` calls.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    select,
)

from airgate.runtime.clock import format_time

metadata = MetaData()

T = String(40)  # a stored time

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_at", T, nullable=False),
)

actions = Table(
    "actions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("investigation", Text, nullable=False),
    Column("entity_type", Text, nullable=False),
    Column("entity_key", Text, nullable=False),
    Column("entity_name", Text, nullable=False),
    Column("entity_hash", Text),
    Column("action_type", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("primary_rule", Text, nullable=False),
    Column("rules", Text, nullable=False),  # JSON list
    Column("approval", Text, nullable=False),  # JSON object
    Column("reasons", Text, nullable=False),  # JSON list
    Column("undo", Text),  # JSON object; null: not undoable
    Column("revert_after", Integer),
    Column("revert_at", T),
    Column("max_automatic_per_hour", Integer),
    Column("created_at", T, nullable=False),
    Column("updated_at", T, nullable=False),
    Column("submitted_by", Text, nullable=False),
    Column("expires_at", T),
    Column("approved_at", T),
    Column("decided_by", Text),
    Column("decided_at", T),
    Column("reason", Text),
    Column("link_id", Integer),  # deduplicated: the first action; redo: the replaced one
    Column("superseded_by", Integer),
    Column("operation", String(10)),  # apply | undo: what running runs, or ran last
    Column("run_key", Text),  # idempotency key of the current or last run
    Column("started_at", T),
    Column("result", Text),  # JSON
    Column("error", Text),
)
# Listing pending actions of one investigation, newest or oldest first.
Index("ix_actions_inv_status", actions.c.investigation, actions.c.status, actions.c.id)
Index("ix_actions_status_id", actions.c.status, actions.c.id)
Index("ix_actions_type_status", actions.c.action_type, actions.c.status)
Index("ix_actions_created", actions.c.created_at)
Index("ix_actions_updated", actions.c.status, actions.c.updated_at)
# Merging into a pending action and the dedup window both look up entity + action.
Index("ix_actions_entity", actions.c.entity_key, actions.c.action_type, actions.c.status)
Index("ix_actions_expiry", actions.c.status, actions.c.expires_at)
Index("ix_actions_revert", actions.c.status, actions.c.revert_at)
Index("ix_actions_hash", actions.c.entity_hash)
Index("ix_actions_rule", actions.c.primary_rule, actions.c.approved_at)

evidence = Table(
    "evidence", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("action_id", Integer, nullable=False),
    Column("investigation", Text, nullable=False),
    Column("added_at", T, nullable=False),
    Column("submitted_by", Text, nullable=False),
    Column("data", Text, nullable=False),  # JSON: the normalized evidence
)
Index("ix_evidence_action", evidence.c.action_id)
Index("ix_evidence_inv", evidence.c.investigation, evidence.c.action_id)

investigations = Table(
    "investigations", metadata,
    Column("id", Text, primary_key=True),
    Column("first_seen", T, nullable=False),
    Column("last_seen", T, nullable=False),
    Column("evidence_count", Integer, nullable=False),
)

approvals = Table(
    "approvals", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("action_id", Integer, nullable=False),
    Column("actor", Text, nullable=False),
    Column("comment", Text),
    Column("at", T, nullable=False),
    UniqueConstraint("action_id", "actor", name="uq_approvals_actor"),
)

# The ``record`` executor's memory: one row per idempotency key, so a second
# apply with the same key returns the first result instead of recording again.
executor_records = Table(
    "executor_records", metadata,
    Column("idempotency_key", String(200), primary_key=True),
    Column("action_id", Integer, nullable=False),
    Column("operation", String(10), nullable=False),
    Column("at", T, nullable=False),
    Column("result", Text, nullable=False),
)

ledger = Table(
    "ledger", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", T, nullable=False),
    Column("event", String(20), nullable=False),
    Column("actor", Text, nullable=False),
    Column("action_id", Integer),
    Column("state_before", String(20)),
    Column("state_after", String(20)),
    Column("comment", Text),
    Column("details", Text, nullable=False),  # canonical JSON
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_ledger_action", ledger.c.action_id, ledger.c.seq)
# Version 4: the store-wide entries (initialized, configured) found without a scan, so
# every command can check the settings table against them.
ix_ledger_event = Index("ix_ledger_event", ledger.c.event, ledger.c.seq)

# One row: the last ledger entry. Writers lock it (SELECT ... FOR UPDATE on
# PostgreSQL; BEGIN IMMEDIATE already serializes SQLite), which serializes the
# chain and every state change with it; verify compares it with the tail.
ledger_head = Table(
    "ledger_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("locked", Boolean, nullable=False, default=False),
)

# Version 2: one row saying which store this is (signed checkpoints name it, so a
# checkpoint of one store never vouches for another) and from which entry on the
# ledger uses hash version 2 (canonical ASCII JSON). Rows before it keep the hash
# they were written with: rehashing them would erase what they prove.
ledger_meta = Table(
    "ledger_meta", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("store_id", String(64), nullable=False),
    Column("hash_v2_from", Integer, nullable=False),
    Column("created_at", T, nullable=False),
)

V1_TABLES = [schema_version, actions, evidence, investigations, approvals, executor_records,
             ledger, ledger_head]


# Version 3: what governs the store, kept in the store itself so that no caller picks it: "demo"
# (true: created by ``airgate init --demo``, the only kind of store a pinned clock may
# write to) and "config" (the users, roles and executors pushed by a global admin with
# ``airgate config push``). Values are canonical JSON; each change is in the ledger.
settings = Table(
    "settings", metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", T, nullable=False),
    Column("updated_by", Text, nullable=False),
)

V3_TABLES = [settings]


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, tables=V1_TABLES)
    conn.execute(insert(ledger_head).values(id=1, seq=0, hash="0" * 64, locked=False))


def _v2(conn: Connection) -> None:
    ledger_meta.create(conn)
    # Locked like a writer does, so no entry lands between reading the head and the boundary.
    head = int(conn.execute(select(ledger_head.c.seq).where(ledger_head.c.id == 1)
                            .with_for_update()).scalar() or 0)
    conn.execute(insert(ledger_meta).values(
        id=1, store_id=secrets.token_hex(16), hash_v2_from=head + 1,
        created_at=format_time(dt.datetime.now(dt.UTC))))


def _v3(conn: Connection) -> None:
    metadata.create_all(conn, tables=V3_TABLES)


def _v4(conn: Connection) -> None:
    ix_ledger_event.create(conn, checkfirst=True)  # new stores have it from version 1


# Version 5: the worker's claims. One row per action a worker holds (``owner``, until
# ``lease_until``) or that waits for one: an undo requested in ``execution: worker`` mode
# (``request``), or a run whose outcome was unknown, retried from ``lease_until`` on.
# The ledger, not this table, vouches for a request: a worker checks it there.
work_leases = Table(
    "work_leases", metadata,
    Column("action_id", Integer, primary_key=True, autoincrement=False),
    Column("request", String(10)),  # "undo": waiting for a worker; null: a claim or a retry
    Column("requested_by", Text),
    Column("owner", Text),  # the worker id holding the lease; null: free
    Column("lease_until", T),  # claimable by anyone from this time on
    Column("attempts", Integer, nullable=False, default=0),
    Column("updated_at", T, nullable=False),
)
Index("ix_work_leases_until", work_leases.c.lease_until)

V5_TABLES = [work_leases]


def _v5(conn: Connection) -> None:
    metadata.create_all(conn, tables=V5_TABLES)


# Version 6: API tokens for ``airgate serve``. Only the SHA-256 of a token is kept; its
# prefix (``agt_`` and a few characters) names it in lists and in the ledger.
api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("prefix", String(40), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("actor", Text, nullable=False),
    Column("created_at", T, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("expires_at", T),
    Column("revoked_at", T),
    Column("revoked_by", Text),
    Column("last_used_at", T),
)

V6_TABLES = [api_tokens]


def _v6(conn: Connection) -> None:
    metadata.create_all(conn, tables=V6_TABLES)


# Every table, in creation order.
TABLES = [*V1_TABLES, ledger_meta, *V3_TABLES, *V5_TABLES, *V6_TABLES]
ALL_TABLES = TABLES

# (version, description, apply). Append new versions; never edit a released one.
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "actions, evidence, approvals, executor records, hash-chained ledger", _v1),
    (2, "store identity; ledger hash version 2 (canonical ASCII JSON) for new entries", _v2),
    (3, "settings: the demo marker and the governing config", _v3),
    (4, "index of ledger events: settings checked against their ledger entries", _v4),
    (5, "work leases: workers claim runs, undo requests and retries", _v5),
    (6, "api tokens of airgate serve (hashes only)", _v6),
]
LATEST = MIGRATIONS[-1][0]
