"""A writer of the store attacks the ledger and the state it governs with raw SQL: signed
checkpoints catch rewrites of the chain, replaying the ledger catches edited tables, and
approve and execute trust the ledger over the mutable columns."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from airgate.errors import InputError, PermissionDenied
from airgate.runtime.checkpoint import (
    create_checkpoint,
    generate_key,
    load_checkpoints,
    load_private_key,
    load_public_key,
    verify_store,
)
from airgate.runtime.clock import FixedClock
from airgate.runtime.config import Config
from airgate.runtime.ledger import GENESIS, canonical_text, row_hash_v2
from airgate.runtime.queue import Queue
from airgate.runtime.records import ActionFilter
from airgate.runtime.store import Store
from runtime_helpers import START, USERS, decision

# Column names are constants of this test, never input: the f-strings below build no injection.
COLUMNS = ("seq", "at", "event", "actor", "action_id", "state_before", "state_after", "comment",
           "details", "prev_hash", "hash")


@pytest.fixture
def queue(store_url):  # type: ignore[no-untyped-def]
    store = Store(store_url, busy_timeout=2)
    yield Queue(store, config=Config(users=USERS), clock=FixedClock(START))
    store.close()


@pytest.fixture
def keys(tmp_path):  # type: ignore[no-untyped-def]
    generate_key(tmp_path / "k.pem")
    return load_private_key(tmp_path / "k.pem"), load_public_key(tmp_path / "k.pem.pub")


def sql(queue: Queue, statement: str, **params: Any) -> None:
    with queue.store.engine.begin() as conn:
        if params:
            conn.execute(text(statement), params)
        else:  # as typed: "quorum":2 holds no bind parameter
            conn.exec_driver_sql(statement)


def rows(queue: Queue) -> list[dict[str, Any]]:
    with queue.store.engine.begin() as conn:
        found = conn.execute(text(f"SELECT {', '.join(COLUMNS)} FROM ledger"  # noqa: S608
                                  " ORDER BY seq"))
        return [dict(r._mapping) for r in found]


def rechain(queue: Queue, entries: list[dict[str, Any]]) -> None:
    """What an attacker with the store's credentials can do: write any entries, numbered,
    linked and hashed as airgate would, and a head that agrees."""
    prev = GENESIS
    for seq, e in enumerate(entries, start=1):
        e.update(seq=seq, prev_hash=prev)
        e["hash"] = prev = row_hash_v2(*(e[c] for c in COLUMNS[:10]))
    sql(queue, "DELETE FROM ledger")
    with queue.store.engine.begin() as conn:
        if entries:
            insert = (f"INSERT INTO ledger ({', '.join(COLUMNS)}) VALUES"  # noqa: S608
                      f" ({', '.join(':' + c for c in COLUMNS)})")
            conn.execute(text(insert), entries)
    sql(queue, "UPDATE ledger_head SET seq = :seq, hash = :hash",
        seq=len(entries), hash=prev)


def history(queue: Queue) -> None:
    queue.submit([decision("a"), decision("b"), decision("c", quorum=2)], actor="bob")
    queue.approve([1], actor="alice")
    queue.reject([2], actor="alice", reason="benign")
    queue.approve([3], actor="alice")


def signed(queue: Queue, keys: Any, tmp_path: Any) -> list[Any]:
    path = tmp_path / "checkpoints.ndjson"
    path.write_text(create_checkpoint(queue.store, keys[0]).line() + "\n")
    return load_checkpoints([path], keys[1])


def forged_approval(e: dict[str, Any]) -> dict[str, Any]:
    return {**e, "event": "approved", "actor": "carol", "comment": None,
            "state_before": "pending", "state_after": "pending",
            "details": canonical_text({"approvals": 2, "quorum": 2})}


def _truncate(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return entries[:-2]


def _empty(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return []


def _replace_last(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [*entries[:-1], {**entries[-1], "actor": "mallory"}]


def _insert_mid(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    at = next(i for i, e in enumerate(entries) if e["action_id"] == 3 and e["event"] == "approved")
    return [*entries[:at], forged_approval(entries[at]), *entries[at:]]


def _rewrite_first(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**entries[0], "actor": "someone-else"}, *entries[1:]]


@pytest.mark.parametrize(("attack", "message"), [
    (_truncate, "signed entry"),
    (_empty, "signed entry"),
    (_replace_last, "is not the entry checkpoint"),
    (_insert_mid, "is not the entry checkpoint"),
    (_rewrite_first, "is not the entry checkpoint"),
])
def test_a_rechained_ledger_verifies_alone_but_not_against_a_checkpoint(
        queue, keys, tmp_path, attack, message):
    history(queue)
    checkpoints = signed(queue, keys, tmp_path)
    assert verify_store(queue.store, checkpoints=checkpoints).ok
    rechain(queue, attack(rows(queue)))
    assert verify_store(queue.store, state=False).chain.ok  # it agrees with itself
    report = verify_store(queue.store, checkpoints=checkpoints, state=False)
    assert not report.chain.ok
    assert message in report.chain.message


def test_a_forged_entry_after_the_last_checkpoint_is_caught_by_the_replay(queue, keys,
                                                                          tmp_path):
    queue.submit([decision("c", quorum=2)], actor="bob")
    queue.approve([1], actor="alice")
    checkpoints = signed(queue, keys, tmp_path)
    entries = rows(queue)
    rechain(queue, [*entries, forged_approval(entries[-1])])
    report = verify_store(queue.store, checkpoints=checkpoints)
    assert report.chain.ok
    assert report.state == [(1, "its approvals in the store (alice) are not those in the"
                                " ledger (alice, carol)")]


def test_a_checkpoint_of_another_store_or_key_is_refused(queue, keys, tmp_path):
    history(queue)
    checkpoints = signed(queue, keys, tmp_path)
    sql(queue, "UPDATE ledger_meta SET store_id = 'other'")
    report = verify_store(queue.store, checkpoints=checkpoints)
    assert not report.ok and "is of another store" in report.chain.message
    generate_key(tmp_path / "other.pem")
    with pytest.raises(InputError, match="signed by another key"):
        load_checkpoints([tmp_path / "checkpoints.ndjson"],
                         load_public_key(tmp_path / "other.pem.pub"))
    edited = (tmp_path / "checkpoints.ndjson").read_text().replace('"seq":', '"seq":1')
    (tmp_path / "edited.ndjson").write_text(edited)
    with pytest.raises(InputError, match="edited.ndjson:1:1: its signature does not verify"):
        load_checkpoints([tmp_path / "edited.ndjson"], keys[1])


# ---------------------------------------------------------------- the state bound to it
def test_a_lowered_quorum_refuses_to_run_and_is_reported(queue):
    queue.submit([decision("c", quorum=2)], actor="bob")
    sql(queue, "UPDATE actions SET approval = replace(approval, '\"quorum\":2', '\"quorum\":1')")
    assert queue.get(1).approval["quorum"] == 1
    with pytest.raises(PermissionDenied,
                       match="approval quorum is 1 in the store but 2 in the ledger"):
        queue.approve([1], actor="alice")
    assert queue.get(1).status == "pending"
    assert verify_store(queue.store).state == [
        (1, "its approval quorum is 1 in the store but 2 in the ledger")]


def test_an_inserted_approval_does_not_count_towards_the_quorum(queue):
    queue.submit([decision("c", quorum=2)], actor="bob")
    sql(queue, "INSERT INTO approvals (action_id, actor, comment, at) VALUES"
               " (1, 'carol', NULL, :at)", at=START)
    assert queue.approve([1], actor="alice")[0].status == "pending"
    assert verify_store(queue.store).state == [
        (1, "its approvals in the store (alice, carol) are not those in the ledger (alice)")]


def test_a_deleted_approval_is_reported(queue):
    queue.submit([decision("c", quorum=2)], actor="bob")
    queue.approve([1], actor="alice")
    sql(queue, "DELETE FROM approvals")
    assert verify_store(queue.store).state == [
        (1, "its approvals in the store (none) are not those in the ledger (alice)")]
    with pytest.raises(PermissionDenied, match="alice already approved it"):
        queue.approve([1], actor="alice")


def test_an_edited_status_cannot_be_approved_and_is_reported(queue):
    queue.submit([decision("a")], actor="bob")
    queue.reject([1], actor="alice", reason="benign")
    sql(queue, "UPDATE actions SET status = 'pending' WHERE id = 1")
    with pytest.raises(PermissionDenied, match="status is pending in the store but rejected"):
        queue.approve([1], actor="alice")
    assert verify_store(queue.store).state == [
        (1, "its status is pending in the store but rejected in the ledger")]


def test_an_action_set_running_by_hand_is_not_run_by_tick(queue):
    queue.submit([decision("a")], actor="bob")
    sql(queue, "UPDATE actions SET status = 'running', operation = 'apply',"
               " run_key = 'airgate:1:apply:2', started_at = :at WHERE id = 1", at=START)
    queue.clock.advance(hours=1)  # type: ignore[attr-defined]
    queue.tick()
    assert queue.get(1).status == "running"
    with queue.store.engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM executor_records")).scalar() == 0
    refused = queue.ledger_entries(1)[-1]
    assert refused.event == "refused" and "status is running in the store" in (
        refused.comment or "")


def test_edited_or_deleted_evidence_is_reported(queue):
    queue.submit([decision("a"), decision("b")], actor="bob")
    sql(queue, "UPDATE evidence SET data = replace(data, 'name-a', 'name-z')")
    sql(queue, "DELETE FROM evidence WHERE action_id = 2")
    problems = verify_store(queue.store).state
    assert [a for a, _ in problems] == [1, 2]
    assert all("does not match" in p for _, p in problems)


def test_edited_evidence_of_a_redone_action_is_reported(queue):
    queue.submit([decision("a")], actor="bob")
    queue.reject([1], actor="carol", reason="wrong action")
    created = queue.redo(1, action_type="restrict_code_execution", actor="carol")
    assert verify_store(queue.store).state == []
    sql(queue, f"UPDATE evidence SET data = replace(data, 'name-a', 'name-z')"  # noqa: S608
               f" WHERE action_id = {created.id}")
    assert [a for a, _ in verify_store(queue.store).state] == [created.id]


def test_a_deleted_action_row_is_reported(queue):
    queue.submit([decision("a"), decision("b")], actor="bob")
    sql(queue, "DELETE FROM actions WHERE id = 2")
    assert verify_store(queue.store).state == [
        (2, "it is in the ledger but not in the actions table (deleted?)")]


def test_an_untouched_store_has_no_differences(queue):
    history(queue)
    queue.submit([decision("d", required=False, revert_after=3600),
                  decision("d", required=False, investigation="inv3"),  # deduplicated
                  decision("e"), decision("e", investigation="inv2"),  # merged
                  decision("f", expires_after=60)], actor="bob")
    queue.approve([3], actor="carol")
    queue.undo([1], actor="alice")
    queue.redo(1, action_type="restrict_code_execution", actor="carol")
    queue.clock.advance(hours=2)  # type: ignore[attr-defined]
    report = queue.tick()
    assert report.expired and report.reverted
    statuses = {a.status for a in queue.list_actions(ActionFilter())}
    assert {"superseded", "deduplicated", "undone", "expired", "rejected", "pending",
            "completed"} <= statuses
    report = verify_store(queue.store)
    assert report.ok, report.state


def test_importing_airgate_and_the_checkpoint_module_loads_no_cryptography():
    import subprocess
    import sys

    code = ("import sys, airgate, airgate.runtime.checkpoint, airgate.runtime.ledger;"
            " print('cryptography' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
