"""Submit spells each evidence document once: the stored text, its ledger hash and the
action's JSON columns are exactly what they were when each was spelled on its own."""

from __future__ import annotations

import dataclasses
import json

import pytest

from airgate.runtime.checkpoint import verify_store
from airgate.runtime.ledger import canonical_json, evidence_digest, evidence_spelled
from runtime_helpers import decision, make_queue, raw_sqlite

TEXTS = ["plain", "café", "\x7f", "tab\there", "nul\x00", "quote\"and\\", "\u2028", "😀",
         "\ud800", "a\x1fb"]


@pytest.mark.parametrize("text", TEXTS)
def test_evidence_spelled_is_the_stored_spelling_and_the_ledger_digest(text):
    data = {"fields": {text: [text, 1, 2.5, None, True]}, "name": text}
    assert evidence_spelled(data) == (canonical_json(data), evidence_digest(data))


def test_evidence_spelled_refuses_nan_as_the_digest_does():
    with pytest.raises(ValueError):
        evidence_digest({"x": float("nan")})
    with pytest.raises(ValueError):
        evidence_spelled({"x": float("nan")})


def test_shared_evidence_is_stored_and_bound_per_action_and_the_store_verifies(tmp_path):
    queue, _ = make_queue(tmp_path)
    first = decision("dev1", "isolate_device", fields={"id": "dev1", "note": "café\x7f😀"})
    # A second action on the same evidence object (as the engine gives several actions on
    # one entity), and one with a different approval in the same batch.
    second = dataclasses.replace(first, action="run_antivirus_scan")
    other = decision("dev2", "isolate_device", roles=("security-admin",), quorum=2,
                     require_comment=True, fields={"id": "dev2"})
    assert second.evidence is first.evidence
    outcomes = queue.submit([first, second, other], actor="alice")
    assert [o.outcome for o in outcomes] == ["created"] * 3
    with raw_sqlite(tmp_path / "airgate.db") as conn:
        stored = dict(conn.execute("SELECT action_id, data FROM evidence").fetchall())
        approvals = dict(conn.execute("SELECT id, approval FROM actions").fetchall())
    ids = [o.action_id for o in outcomes]
    assert stored[ids[0]] == stored[ids[1]] == canonical_json(json.loads(stored[ids[0]]))
    assert "café\x7f😀" in stored[ids[0]]  # kept as UTF-8, as before
    for action_id in ids:
        created = queue.ledger_entries(action_id)[0]
        assert created.details["evidence"] == [evidence_digest(json.loads(stored[action_id]))]
    assert json.loads(approvals[ids[0]])["roles"] == ["active-remediation"]
    assert json.loads(approvals[ids[2]]) == {**json.loads(approvals[ids[0]]),
                                             "roles": ["security-admin"], "quorum": 2,
                                             "require_comment": True}
    assert queue.get(ids[2]).approval["quorum"] == 2
    assert queue.get(ids[0]).approval["quorum"] == 1
    assert verify_store(queue.store).ok


def test_equal_but_differently_typed_approvals_keep_their_own_spelling(tmp_path):
    # True == 1 and 0.0 == -0.0 in Python, but JSON spells them apart: a batch that spells
    # each distinct approval once must not give one action the other's text.
    queue, _ = make_queue(tmp_path)
    made = [decision("dev1", require_comment=True), decision("dev2", require_comment=1),
            decision("dev3", expires_after=0.0), decision("dev4", expires_after=-0.0)]
    ids = [o.action_id for o in queue.submit(made, actor="alice")]
    with raw_sqlite(tmp_path / "airgate.db") as conn:
        approvals = dict(conn.execute("SELECT id, approval FROM actions").fetchall())
    assert '"require_comment":true' in approvals[ids[0]]
    assert '"require_comment":1' in approvals[ids[1]]
    assert '"expires_after":0.0' in approvals[ids[2]]
    assert '"expires_after":-0.0' in approvals[ids[3]]


PLAIN = [{"a": [1, 2.5, -0.0, None, True, "x"], "b": {"c": ("t", 1)}}, [], "s", 0, None]
NOT_PLAIN = [{1: "int key"}, {"a": float("nan")}, {"a": [float("inf")]},
             {"when": dataclasses.replace}, {"a": {"b": {True: 1}}}, [{"x": 1e400}]]


@pytest.mark.parametrize("value", PLAIN)
def test_a_plain_json_value_is_its_own_json_safe_copy(value):
    from airgate.runtime.submit import is_plain_json, json_safe

    assert is_plain_json(value)
    assert canonical_json(json_safe(value)) == canonical_json(value)


@pytest.mark.parametrize("value", NOT_PLAIN, ids=range(len(NOT_PLAIN)))
def test_what_json_would_change_is_not_plain_and_gets_copied(value):
    from airgate.runtime.submit import is_plain_json

    assert not is_plain_json(value)


def test_yaml_evidence_with_a_date_and_an_integer_key_is_stored_as_its_json_copy(tmp_path):
    import datetime as dt

    queue, _ = make_queue(tmp_path)
    fields = {"id": "dev1", "seen": dt.date(2026, 12, 1), "ports": {22: "ssh", 3: "x"}}
    [outcome] = queue.submit([decision("dev1", fields=fields)], actor="alice")
    with raw_sqlite(tmp_path / "airgate.db") as conn:
        [(text,)] = conn.execute("SELECT data FROM evidence").fetchall()
    stored = json.loads(text)["fields"]
    assert stored == {"id": "dev1", "seen": "2026-12-01", "ports": {"22": "ssh", "3": "x"}}
    assert text == canonical_json(json.loads(text))
    assert verify_store(queue.store).ok
