"""The hash chain: every edit, deletion or reordering is caught, even made with sqlite3."""

from __future__ import annotations

import pytest

from airgate.runtime.ledger import GENESIS, canonical_json, chain, verify
from airgate.runtime.records import LedgerEvent
from runtime_helpers import decision, make_queue, raw_sqlite


def _entries(n: int = 4):  # type: ignore[no-untyped-def]
    events = [LedgerEvent("created", "bob", i, None, "pending", None, {"n": i})
              for i in range(1, n + 1)]
    return chain(events, head_seq=0, head_hash=GENESIS, at="2024-05-01T12:00:00.000000Z")


def test_canonical_json_is_one_spelling():
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_a_good_chain_verifies():
    entries = _entries()
    result = verify(entries, head=(4, entries[-1].hash))
    assert (result.ok, result.count) == (True, 4)


def test_edit_is_caught():
    entries = _entries()
    entries[2] = entries[2].__class__(**{**entries[2].__dict__, "actor": "mallory"})
    result = verify(entries)
    assert (result.ok, result.bad_seq) == (False, 3)
    assert "entry 3 was changed" in result.message


def test_deletion_is_caught():
    entries = _entries()
    del entries[1]
    result = verify(entries)
    assert (result.ok, result.bad_seq) == (False, 2)
    assert "entry 2 is missing" in result.message


def test_reordering_is_caught():
    entries = _entries()
    entries[1], entries[2] = entries[2], entries[1]
    result = verify(entries)
    assert (result.ok, result.bad_seq) == (False, 2)


def test_truncation_is_caught_by_the_head():
    entries = _entries()
    result = verify(entries[:3], head=(4, entries[-1].hash))
    assert not result.ok and "head records entry 4" in result.message


def _store_with_history(tmp_path):  # type: ignore[no-untyped-def]
    queue, _ = make_queue(tmp_path)
    queue.submit([decision("a"), decision("b")], actor="bob")
    queue.approve([1, 2], actor="alice")
    return queue


def _verify(queue):  # type: ignore[no-untyped-def]
    with queue.store.read() as tx:
        return verify(tx.iter_ledger(chunk=3), head=tx.ledger_head())


@pytest.mark.parametrize(("sql", "bad"), [
    ("UPDATE ledger SET comment = 'edited' WHERE seq = 4", 4),
    ("UPDATE ledger SET state_after = 'rejected' WHERE seq = 5", 5),
    ("DELETE FROM ledger WHERE seq = 3", 3),
    ("UPDATE ledger SET seq = 100 WHERE seq = 2", 2),
    ("DELETE FROM ledger WHERE seq = (SELECT max(seq) FROM ledger)", 8),
])
def test_a_single_edited_row_in_the_sqlite_file_is_caught(tmp_path, sql, bad):
    queue = _store_with_history(tmp_path)
    assert _verify(queue).ok
    with raw_sqlite(tmp_path / "airgate.db") as conn:
        conn.execute(sql)
    result = _verify(queue)
    assert (result.ok, result.bad_seq) == (False, bad)


def test_refusals_are_in_the_ledger_and_the_chain_holds(tmp_path):
    queue = _store_with_history(tmp_path)
    queue.submit([decision("c")], actor="bob")
    with pytest.raises(Exception, match="nobody holds no role"):
        queue.approve([3], actor="nobody")
    assert queue.ledger_entries(3)[-1].event == "refused"
    assert _verify(queue).ok
