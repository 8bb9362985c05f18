"""API tokens in the library: hash-only storage, expiry, revocation, last use."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from airgate.errors import NotFound, Unauthenticated, UsageError
from airgate.runtime import tokens
from airgate.runtime.clock import parse_time
from runtime_helpers import START, open_store

NOW = parse_time(START)


def test_a_token_acts_as_its_actor_until_it_expires(store_url: str) -> None:
    store = open_store(store_url)
    raw, row = tokens.create(store, actor="Alice", by="root", now=NOW, expires_in=60)
    assert row.actor == "alice" and row.prefix == raw[:12] and raw.startswith("agt_")
    assert tokens.verify(store, raw, now=NOW + dt.timedelta(seconds=59)) == "alice"
    with pytest.raises(Unauthenticated, match=r"^token agt_[\w-]{8}… expired at 2024-05-01T12:01"):
        tokens.verify(store, raw, now=NOW + dt.timedelta(seconds=60))


@pytest.mark.parametrize("raw, message", [
    ("", "not an airgate token"), ("Bearer x", "not an airgate token"),
    ("agt_" + "x" * 200, "not an airgate token"), ("agt_nothing", "unknown token"),
])
def test_what_is_not_a_stored_token_is_refused(store_url: str, raw: str, message: str) -> None:
    store = open_store(store_url)
    tokens.create(store, actor="alice", by="root", now=NOW)
    with pytest.raises(Unauthenticated, match=message):
        tokens.verify(store, raw, now=NOW)


def test_revoking_twice_changes_nothing_and_an_unknown_id_is_not_found(store_url: str) -> None:
    store = open_store(store_url)
    raw, row = tokens.create(store, actor="alice", by="root", now=NOW)
    first = tokens.revoke(store, row.id, by="root", now=NOW)
    again = tokens.revoke(store, row.id, by="carol", now=NOW + dt.timedelta(hours=1))
    assert first.revoked_at == again.revoked_at and again.revoked_by == "root"
    with store.engine.begin() as conn:
        events = list(conn.execute(text("SELECT event FROM ledger ORDER BY seq")).scalars())
    assert events == ["token_created", "token_revoked"]  # the second revoke logs nothing
    with pytest.raises(Unauthenticated, match="was revoked at"):
        tokens.verify(store, raw, now=NOW)
    with pytest.raises(NotFound, match="no token 7"):
        tokens.revoke(store, 7, by="root", now=NOW)


def test_last_use_is_written_at_most_once_a_minute(store_url: str) -> None:
    store = open_store(store_url)
    raw, _ = tokens.create(store, actor="alice", by="root", now=NOW)
    tokens.verify(store, raw, now=NOW)
    tokens.verify(store, raw, now=NOW + dt.timedelta(seconds=30))
    assert tokens.list_tokens(store)[0].last_used_at == "2024-05-01T12:00:00.000000Z"
    tokens.verify(store, raw, now=NOW + dt.timedelta(seconds=61))
    assert tokens.list_tokens(store)[0].last_used_at == "2024-05-01T12:01:01.000000Z"


@pytest.mark.parametrize("actor", ["", "automation", "a\x1bb"])
def test_a_token_needs_a_real_actor(store_url: str, actor: str) -> None:
    store = open_store(store_url)
    with pytest.raises(UsageError, match="actor"):
        tokens.create(store, actor=actor, by="root", now=NOW)


def test_a_non_positive_expiry_is_refused(store_url: str) -> None:
    store = open_store(store_url)
    with pytest.raises(UsageError, match="positive duration"):
        tokens.create(store, actor="alice", by="root", now=NOW, expires_in=0)
