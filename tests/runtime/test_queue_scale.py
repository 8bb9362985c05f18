"""The fast paths of the queue at scale keep the queue's meaning: batched submit, listing
one investigation through indexed lookups, and hashing ledger rows without records."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

import airgate.runtime.submit
from airgate.runtime.ledger import (
    GENESIS,
    canonical_json,
    entry_hash,
    row_hash,
    verify,
    verify_rows,
)
from airgate.runtime.records import ActionFilter
from runtime_helpers import decision, make_queue


@pytest.mark.parametrize("fields", [
    (1, "2024-05-01T12:00:00.000000Z", "created", "bob", 7, None, "pending", None,
     {"rules": ["r.isolate"], "approval": {"quorum": 1}}),
    (2, "2024-05-01T12:00:00.000000Z", "refused", "zoë \"quoted\"", None, "pending", "pending",
     "line\nbreak\t\x01 \u2028 ünïcode \\ back", {}),
    (3, "t", "merged", "a", 0, "x", "y", "", {"nested": {"b": [1, 2.5, None, True], "a": "é"}}),
])
def test_row_hash_is_the_entry_hash_of_the_same_content(fields):
    seq, at, event, actor, action_id, before, after, comment, details = fields
    content = {"seq": seq, "at": at, "event": event, "actor": actor, "action_id": action_id,
               "state_before": before, "state_after": after, "comment": comment,
               "details": details, "prev_hash": GENESIS}
    fast = row_hash(seq, at, event, actor, action_id, before, after, comment,
                    canonical_json(details), GENESIS)
    assert fast == entry_hash(content)


def _rows(queue):  # type: ignore[no-untyped-def]
    with queue.store.read() as tx:
        return list(tx.iter_ledger_rows(chunk=2)), tx.ledger_head()


def test_verify_rows_agrees_with_verify_and_catches_an_edit(store_url):
    queue, _ = make_queue(store_url)
    queue.submit([decision(key=f"dev{i}") for i in range(3)], actor="bob")
    rows, head = _rows(queue)
    with queue.store.read() as tx:
        assert verify(tx.iter_ledger(), head=head) == verify_rows(rows, head=head)
    assert verify_rows(rows, head=head).ok and head[0] == 3
    edited = [*rows]
    edited[1] = (*rows[1][:3], "mallory", *rows[1][4:])
    result = verify_rows(edited, head=head)
    assert (result.ok, result.bad_seq) == (False, 2)
    assert "entry 2 was changed" in result.message


def test_verify_rows_refuses_a_respelled_details_text(store_url):
    # One spelling per value: the same value spelled otherwise is a changed entry.
    queue, _ = make_queue(store_url)
    queue.submit([decision()], actor="bob")
    rows, head = _rows(queue)
    assert verify_rows(rows, head=head).ok
    respelled = json.dumps(json.loads(rows[0][8]), indent=2)  # same value, other spelling
    result = verify_rows([(*rows[0][:8], respelled, *rows[0][9:])], head=head)
    assert (result.ok, result.bad_seq) == (False, 1)
    assert "canonical spelling" in result.message
    broken = verify_rows([(*rows[0][:8], "{not json", *rows[0][9:])], head=head)
    assert (broken.ok, broken.bad_seq) == (False, 1)


def test_verify_rows_catches_an_edited_details_value(store_url):
    queue, _ = make_queue(store_url)
    queue.submit([decision(key="a"), decision(key="b")], actor="bob")
    with queue.store.engine.begin() as conn:
        conn.execute(text("UPDATE ledger SET details = '{\"investigation\":\"other\"}'"
                          " WHERE seq = 2"))
    rows, head = _rows(queue)
    result = verify_rows(rows, head=head)
    assert (result.ok, result.bad_seq) == (False, 2)


def test_listing_an_investigation_includes_actions_merged_from_another(store_url):
    queue, _ = make_queue(store_url)
    a = queue.submit([decision(key="d1", investigation="inv1")], actor="bob")[0].action_id
    b = queue.submit([decision(key="d2", investigation="inv2")], actor="bob")[0].action_id
    c = queue.submit([decision(key="d3", investigation="inv2")], actor="bob")[0].action_id
    merged = queue.submit([decision(key="d2", investigation="inv1")], actor="bob")[0]
    assert (merged.outcome, merged.action_id) == ("merged", b)
    queue.reject([c], actor="alice", reason="benign")

    def ids(**kw):  # type: ignore[no-untyped-def]
        return [x.id for x in queue.list_actions(ActionFilter(**kw))]

    assert ids(investigation="inv1") == [a, b]
    assert ids(investigation="inv1", newest_first=True) == [b, a]
    assert ids(investigation="inv1", limit=1) == [a]
    assert ids(investigation="inv2", statuses=("pending",)) == [b]
    assert ids(investigation="inv2", statuses=("rejected",), by_update=True) == [c]
    assert ids(investigation="inv2", action_type="isolate_device") == [b, c]
    assert ids(investigation="nothing-here") == []


def test_a_batch_merges_duplicates_and_keeps_action_types_apart(store_url):
    queue, _ = make_queue(store_url)
    outs = queue.submit([
        decision(key="d1", investigation="inv1"),
        decision(key="d1", action="restrict_code_execution", investigation="inv1"),
        decision(key="d1", investigation="inv2"),
        decision(key="d2", investigation="inv2"),
    ], actor="bob")
    assert [(o.outcome, o.action_id) for o in outs] == [
        ("created", 1), ("created", 2), ("merged", 1), ("created", 3)]
    assert len(queue.show(1)["evidence"]) == 2
    assert [e["event"] for e in queue.show(1)["ledger"]] == ["created", "merged"]


def test_merging_across_batches_of_one_submit(store_url, monkeypatch):
    monkeypatch.setattr(airgate.runtime.submit, "BATCH", 2)
    queue, _ = make_queue(store_url)
    outs = queue.submit([decision(key=k, investigation=f"inv-{i}")
                         for i, k in enumerate(["d1", "d2", "d3", "d1", "d2"])], actor="bob")
    assert [(o.outcome, o.action_id) for o in outs] == [
        ("created", 1), ("created", 2), ("created", 3), ("merged", 1), ("merged", 2)]


@pytest.mark.parametrize("required", [True, False])
def test_submit_outcomes_are_the_stored_records(store_url, required):
    queue, _ = make_queue(store_url)
    outs = queue.submit([decision(key="d1", required=required),
                         decision(key="d2", required=required,
                                  fields={"fileDetails": {"sha256": "ABC"}}),
                         decision(key="d1", investigation="inv9", required=required)],
                        actor="bob")
    for out in outs:
        assert out.action == queue.get(out.action_id)
    assert outs[1].action.entity_hash == "abc"


@pytest.mark.parametrize(("env", "level"), [(None, 2), ("full", 2), ("NORMAL", 1)])
def test_sqlite_sync_mode(tmp_path, monkeypatch, env, level):
    from airgate.runtime.store.database import ENV_DB_SYNC, Store

    if env is None:
        monkeypatch.delenv(ENV_DB_SYNC, raising=False)
    else:
        monkeypatch.setenv(ENV_DB_SYNC, env)
    with Store(tmp_path / "a.db") as store, store.read() as tx:
        assert tx.conn.exec_driver_sql("PRAGMA synchronous").scalar() == level
        assert tx.conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_an_unknown_sync_mode_is_a_usage_error(tmp_path, monkeypatch):
    # Like AIRGATE_DB_TIMEOUT=abc: a bad setting of the caller's, exit 2.
    from airgate.errors import UsageError
    from airgate.runtime.store.database import ENV_DB_SYNC, Store

    monkeypatch.setenv(ENV_DB_SYNC, "off")
    with pytest.raises(UsageError, match="AIRGATE_DB_SYNC must be full or normal, not 'off'"):
        Store(tmp_path / "a.db")


@pytest.mark.postgres
def test_postgresql_batches_merges_lists_and_refreshes_statistics(monkeypatch, postgres_url):
    import airgate.runtime.store.database
    from airgate.runtime.clock import FixedClock
    from airgate.runtime.config import Config
    from airgate.runtime.queue import Queue
    from airgate.runtime.store import Store
    from runtime_helpers import USERS

    url = postgres_url
    monkeypatch.setattr(airgate.runtime.store.database, "ANALYZE_MIN_ROWS", 1)
    with Store(url) as store:
        queue = Queue(store, config=Config(users=USERS),
                      clock=FixedClock("2024-05-01T12:00:00Z"))
        outs = queue.submit([decision(key="d1", investigation="inv1"),
                             decision(key="d2", investigation="inv2",
                                      fields={"id": "d2", "note": "x'\\\t\n\\N"}),
                             decision(key="d1", investigation="inv2")], actor="bob")
        assert [(o.outcome, o.action_id) for o in outs] == [
            ("created", 1), ("created", 2), ("merged", 1)]
        assert [a.id for a in queue.list_actions(ActionFilter(investigation="inv2"))] == [1, 2]
        assert outs[1].action == queue.get(2)
        assert queue.show(2)["evidence"][0]["data"]["fields"]["note"] == "x'\\\t\n\\N"
        rows, head = _rows(queue)
        assert verify_rows(rows, head=head).ok and head[0] == 3
        with store.engine.connect() as conn:
            # A table never analyzed has reltuples -1; ANALYZE sets the count it sampled.
            sampled = conn.execute(text(
                "SELECT reltuples FROM pg_class WHERE relname = 'actions'")).scalar()
        assert sampled == 2
