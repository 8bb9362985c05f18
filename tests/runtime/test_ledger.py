"""The hash chain: every edit, deletion or reordering is caught, even made with sqlite3."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from airgate.runtime.ledger import (
    GENESIS,
    canonical_json,
    canonical_text,
    chain,
    entry_hash_v2,
    row_hash,
    row_hash_v2,
    verify,
    verify_rows,
)
from airgate.runtime.records import LedgerEvent
from runtime_helpers import decision, make_queue, open_store


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


def _store_with_history(target):  # type: ignore[no-untyped-def]
    queue, _ = make_queue(target)
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
def test_a_single_edited_row_in_the_database_is_caught(sql, bad, store_url):
    queue = _store_with_history(store_url)
    assert _verify(queue).ok
    with queue.store.engine.begin() as conn:  # a writer of the database, past airgate
        conn.exec_driver_sql(sql)
    result = _verify(queue)
    assert (result.ok, result.bad_seq) == (False, bad)


def test_refusals_are_in_the_ledger_and_the_chain_holds(tmp_path):
    queue = _store_with_history(tmp_path)
    queue.submit([decision("c")], actor="bob")
    with pytest.raises(Exception, match="nobody holds no role"):
        queue.approve([3], actor="nobody")
    assert queue.ledger_entries(3)[-1].event == "refused"
    assert _verify(queue).ok


# ---------------------------------------------------------------- one spelling per entry
def _first_details(queue):  # type: ignore[no-untyped-def]
    with queue.store.engine.begin() as conn:
        return conn.execute(text("SELECT details FROM ledger WHERE seq = 1")).scalar_one()


@pytest.mark.parametrize("respell", [
    # A duplicate key: readers that keep the first value see "evil", json.loads the last.
    lambda d: '{"investigation":"evil",' + d[1:],
    lambda d: json.dumps(json.loads(d), sort_keys=True),  # other whitespace
    lambda d: json.dumps(dict(reversed(list(json.loads(d).items()))),
                         separators=(",", ":")),  # reordered keys
    lambda d: d.replace('"inv1"', '"\\u0069nv1"'),  # another escape of the same text
])
def test_a_respelled_details_text_does_not_verify(respell, store_url):
    queue = _store_with_history(store_url)
    details = _first_details(queue)
    changed = respell(details)
    assert changed != details and json.loads(changed) == json.loads(details)
    with queue.store.engine.begin() as conn:
        conn.execute(text("UPDATE ledger SET details = :d WHERE seq = 1"), {"d": changed})
    with queue.store.read() as tx:  # the stored text, as ``ledger verify`` reads it
        result = verify_rows(tx.iter_ledger_rows(), head=tx.ledger_head())
    assert (result.ok, result.bad_seq) == (False, 1)
    assert "canonical spelling" in result.message


def test_hash_version_2_is_the_entry_hash_of_ascii_canonical_json():
    details = {"b": [1, 2.5, None], "a": "é \ud800 \x00"}
    content = {"seq": 3, "at": "t", "event": "refused", "actor": "zoë", "action_id": None,
               "state_before": "pending", "state_after": "pending", "comment": "\u2028",
               "details": details, "prev_hash": GENESIS}
    fast = row_hash_v2(3, "t", "refused", "zoë", None, "pending", "pending", "\u2028",
                       canonical_text(details), GENESIS)
    assert fast == entry_hash_v2(content)
    assert canonical_text(details).isascii()


def _v1_store(target):  # type: ignore[no-untyped-def]
    """A store as airgate wrote it before schema version 2: entries of hash version 1."""
    from sqlalchemy import create_engine, insert

    from airgate.runtime.store import resolve_url, schema

    engine = create_engine(resolve_url(target))
    entries, prev = [], GENESIS
    for seq in (1, 2):
        details = canonical_json({"rules": ["r"], "note": "é"})
        row = {"seq": seq, "at": "2024-05-01T12:00:00.000000Z", "event": "created",
               "actor": "zoë", "action_id": seq, "state_before": None,
               "state_after": "pending", "comment": None, "details": details,
               "prev_hash": prev}
        row["hash"] = prev = row_hash(*row.values())
        entries.append(row)
    with engine.begin() as conn:
        schema._v1(conn)
        conn.execute(insert(schema.schema_version).values(
            version=1, description="v1", applied_at="2024-05-01T12:00:00.000000Z"))
        conn.execute(insert(schema.ledger), entries)
        conn.execute(schema.ledger_head.update().values(seq=2, hash=prev))
    engine.dispose()


def test_an_old_store_keeps_its_hashes_and_new_entries_use_version_2(empty_store_url):
    _v1_store(empty_store_url)
    store = open_store(empty_store_url)
    with store.read() as tx:
        assert tx.ledger_meta()[1] == 3  # hash version 2 from the first new entry on
        result = verify_rows(tx.iter_ledger_rows(), head=tx.ledger_head(), v2_from=3)
    assert result.ok, result.message
    with store.write() as tx:
        tx.log(LedgerEvent("refused", "bob", None, None, None, "x", {"k": "é"}),
               "2024-05-01T12:00:01.000000Z")
    with store.read() as tx:
        rows = list(tx.iter_ledger_rows())
        assert verify_rows(rows, head=tx.ledger_head(), v2_from=3).ok
    assert rows[0][8] == '{"note":"é","rules":["r"]}' and rows[2][8] == '{"k":"\\u00e9"}'
    # Moving the version boundary either way breaks the chain: neither form passes as the other.
    for boundary in (1, 4):
        assert not verify_rows(rows, v2_from=boundary).ok
    store.close()
