"""Submitting again: idempotent per (investigation, entity, action), investigations
without decisions are recorded, and a batch that fails says what was stored."""

from __future__ import annotations

import pytest

from airgate.runtime import submit as submit_mod
from airgate.runtime.queue import SubmitIncomplete
from airgate.runtime.records import ActionFilter
from runtime_helpers import decision, make_queue


def test_the_same_investigation_twice_changes_nothing(store_url):
    queue, _ = make_queue(store_url)
    first = queue.submit([decision("d1"), decision("d2")], actor="bob")
    again = queue.submit([decision("d1"), decision("d2")], actor="bob")
    assert [(o.outcome, o.action_id) for o in again] == [("unchanged", 1), ("unchanged", 2)]
    assert [o.action.status for o in again] == [o.action.status for o in first]
    assert len(queue.show(1)["evidence"]) == 1
    assert [e.event for e in queue.ledger_entries(1)] == ["created"]
    assert len(queue.list_actions(ActionFilter())) == 2


@pytest.mark.parametrize("settle", ["approve", "reject", "undo"])
def test_a_settled_action_is_not_reopened_by_its_own_investigation(store_url, settle):
    # The same alert arriving again after its action was settled is still the same
    # investigation's decision: it names the settled action instead of acting twice.
    queue, _ = make_queue(store_url)
    queue.submit([decision()], actor="bob")
    queue.approve([1], actor="alice")
    if settle == "reject":
        queue.submit([decision("d2")], actor="bob")
        queue.reject([2], actor="alice", reason="benign")
    elif settle == "undo":
        queue.undo([1], actor="alice")
    target = 2 if settle == "reject" else 1
    key = "d2" if settle == "reject" else "dev1"
    [out] = queue.submit([decision(key)], actor="bob")
    assert (out.outcome, out.action_id) == ("unchanged", target)
    assert out.action.status == queue.get(target).status
    # A new investigation on the same device is a new decision.
    [other] = queue.submit([decision(key, investigation="inv2")], actor="bob")
    assert other.outcome == "created"


def test_evidence_merged_from_another_investigation_counts_as_submitted(store_url):
    queue, _ = make_queue(store_url)
    queue.submit([decision(investigation="inv1")], actor="bob")
    queue.submit([decision(investigation="inv2")], actor="bob")  # merged into action 1
    [out] = queue.submit([decision(investigation="inv2")], actor="bob")
    assert (out.outcome, out.action_id) == ("unchanged", 1)
    assert len(queue.show(1)["evidence"]) == 2


def test_investigations_without_decisions_are_no_threats_found(store_url):
    queue, _ = make_queue(store_url)
    queue.submit([decision(investigation="inv1")], actor="bob",
                 investigations=["inv1", "quiet"])
    assert [(r["investigation"], r["status"]) for r in queue.investigations()] == [
        ("inv1", "pending approval"), ("quiet", "no threats found")]
    queue.submit([], actor="bob", investigations=["alone"])
    assert "alone" in {r["investigation"] for r in queue.investigations()}


def test_a_failing_batch_reports_what_was_stored(store_url, monkeypatch):
    monkeypatch.setattr(submit_mod, "BATCH", 2)
    queue, _ = make_queue(store_url)
    decisions = [decision(f"d{i}", required=False) for i in range(4)]
    # An integer no database column holds: the third batch fails inside the store.
    decisions.append(decision("poison", revert_after=2**70))
    decisions.append(decision("d9"))
    # (?s): PostgreSQL's message of the failed batch spans lines (its CONTEXT line).
    with pytest.raises(SubmitIncomplete, match=r"(?s)submit stopped at decision 5 of 6"
                       r" \(investigation inv1\): .*the 4 decisions before it were stored"
                       r" \(4 created, 0 merged, 0 unchanged, 0 excluded\), the 2 from it on"
                       r" were not") as caught:
        queue.submit(decisions, actor="bob")
    stored = queue.list_actions(ActionFilter())
    assert [a.entity_key for a in stored] == ["d0", "d1", "d2", "d3"]
    # The committed batches' automatic actions ran: none is left running.
    assert {a.status for a in stored} == {"completed"}
    assert [o.action.status for o in caught.value.outcomes] == ["completed"] * 4
    # Submitting again (the poison removed) stores only what is missing.
    again = queue.submit([*decisions[:4], decisions[5]], actor="bob")
    assert [o.outcome for o in again] == ["unchanged"] * 4 + ["created"]


def test_resubmission_and_the_new_reads_on_postgresql():
    from airgate.runtime.clock import FixedClock
    from airgate.runtime.config import Config
    from airgate.runtime.queue import Queue
    from airgate.runtime.store import Store
    from runtime_helpers import USERS, clean_postgres_url

    store = Store(clean_postgres_url())
    queue = Queue(store, config=Config(users=USERS), clock=FixedClock("2024-05-01T12:00:00Z"))
    queue.submit([decision("pa"), decision("pb", "quarantine_file", entity_type="file",
                                            required=False)], actor="bob",
                 investigations=["inv1", "quiet"])
    again = queue.submit([decision("pa")], actor="bob")
    assert [(o.outcome, o.action_id) for o in again] == [("unchanged", 1)]
    queue.undo([2], actor="alice")
    assert queue.undone_by([1, 2]) == {2: ("alice", "undone")}
    assert queue.approvers([1, 2]) == {}
    assert {r["investigation"]: r["status"] for r in queue.investigations()} == {
        "inv1": "pending approval", "quiet": "no threats found"}
    store.close()
