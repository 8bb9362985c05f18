"""The queue's state machine, roles, expiry, dedup, caps, undo, redo and reverts."""

from __future__ import annotations

import pytest

from airgate.errors import NotFound, PermissionDenied, TransitionError, UsageError
from airgate.runtime.investigations import derive
from airgate.runtime.records import ActionFilter
from runtime_helpers import decision, events, make_queue


def submit_one(queue, d, actor="bob"):  # type: ignore[no-untyped-def]
    return queue.submit([d], actor=actor)[0]


def test_pending_then_approved_runs_and_completes(store_url):
    queue, _ = make_queue(store_url)
    out = submit_one(queue, decision())
    assert (out.outcome, out.action.status) == ("created", "pending")
    assert out.action.expires_at == "2024-05-08T12:00:00.000000Z"
    [done] = queue.approve([out.action_id], actor="alice")
    assert done.status == "completed"
    assert done.result["recorded"] is True
    assert events(queue, done.id) == [
        ("created", None, "pending"), ("approved", "pending", "approved"),
        ("started", "approved", "running"), ("completed", "running", "completed")]


def test_same_entity_and_action_pending_is_merged(store_url):
    queue, _ = make_queue(store_url)
    first = submit_one(queue, decision(investigation="inv1"))
    second = submit_one(queue, decision(investigation="inv2"))
    assert second.outcome == "merged" and second.action_id == first.action_id
    assert len(queue.show(first.action_id)["evidence"]) == 2
    assert [a.id for a in queue.list_actions(ActionFilter(investigation="inv2"))] == [1]


def test_duplicates_inside_one_batch_merge(store_url):
    queue, _ = make_queue(store_url)
    outs = queue.submit([decision(investigation="inv1"), decision(investigation="inv2")],
                        actor="bob")
    assert [o.outcome for o in outs] == ["created", "merged"]


def test_excluded_decisions_are_not_enqueued(store_url):
    queue, _ = make_queue(store_url)
    out = submit_one(queue, decision(suppressed_by=("never-isolate-dc",)))
    assert (out.outcome, out.action_id) == ("excluded", None)
    assert queue.list_actions(ActionFilter()) == []


def test_automatic_decision_is_approved_by_automation_and_carried_out(store_url):
    queue, _ = make_queue(store_url)
    out = submit_one(queue, decision(required=False))
    assert out.action.status == "completed"
    assert out.action.decided_by == "automation"


def test_automatic_cap_holds_the_rest_for_approval(store_url):
    queue, clock = make_queue(store_url)
    outs = queue.submit([decision(f"d{i}", required=False, max_automatic_per_hour=2)
                         for i in range(3)], actor="bob")
    assert [o.action.status for o in outs] == ["completed", "completed", "pending"]
    assert "max_automatic_per_hour: 2" in outs[2].action.reason
    clock.advance(hours=1, seconds=1)
    later = submit_one(queue, decision("d9", required=False, max_automatic_per_hour=2))
    assert later.action.status == "completed"


@pytest.mark.parametrize(("minutes", "status"), [(59, "deduplicated"), (61, "completed")])
def test_dedup_window_of_one_hour(store_url, minutes, status):
    queue, clock = make_queue(store_url)
    first = submit_one(queue, decision())
    queue.approve([first.action_id], actor="alice")
    clock.advance(minutes=minutes)
    again = submit_one(queue, decision(investigation="inv2"))  # a new alert, same device
    [after] = queue.approve([again.action_id], actor="alice")
    assert after.status == status
    if status == "deduplicated":
        assert after.link_id == first.action_id
        assert ("deduplicated", "approved", "deduplicated") in events(queue, after.id)


@pytest.mark.parametrize(("days", "status"), [(6, "pending"), (7, "expired")])
def test_pending_actions_expire_after_a_week(store_url, days, status):
    queue, clock = make_queue(store_url)
    out = submit_one(queue, decision())
    clock.advance(days=days)
    queue.maintain()
    assert queue.get(out.action_id).status == status


def test_expired_counts_as_rejected_and_terminates_the_investigation(store_url):
    queue, clock = make_queue(store_url)
    submit_one(queue, decision())
    clock.advance(days=8)
    assert queue.expire() == [1]
    assert queue.investigations()[0]["status"] == "terminated by system"
    with pytest.raises(TransitionError, match="it is expired"):
        queue.approve([1], actor="alice")


def test_reject_needs_a_reason(store_url):
    queue, _ = make_queue(store_url)
    submit_one(queue, decision())
    with pytest.raises(UsageError, match="needs a reason"):
        queue.reject([1], actor="alice", reason="  ")
    [a] = queue.reject([1], actor="alice", reason="false positive")
    assert (a.status, a.reason) == ("rejected", "false positive")


def test_invalid_transition_changes_nothing(store_url):
    queue, _ = make_queue(store_url)
    submit_one(queue, decision())
    queue.reject([1], actor="alice", reason="no")
    before = queue.ledger_entries(1)
    with pytest.raises(TransitionError, match="cannot approve action 1.*it is rejected"):
        queue.approve([1], actor="alice")
    assert queue.ledger_entries(1) == before


def test_unknown_id_is_not_found(store_url):
    queue, _ = make_queue(store_url)
    with pytest.raises(NotFound, match="no action 42"):
        queue.approve([42], actor="alice")


@pytest.mark.parametrize(("actor", "roles", "allowed"), [
    ("alice", ("active-remediation",), True),
    ("root", ("active-remediation",), True),  # global-admin approves anything
    ("dave", ("active-remediation",), False),
    ("nobody", ("active-remediation",), False),
    ("dave", ("search-and-purge",), True),
])
def test_roles(store_url, actor, roles, allowed):
    queue, _ = make_queue(store_url)
    submit_one(queue, decision(roles=roles))
    if allowed:
        assert queue.approve([1], actor=actor)[0].status == "completed"
        return
    with pytest.raises(PermissionDenied, match=f"{actor} holds"):
        queue.approve([1], actor=actor)
    assert queue.get(1).status == "pending"
    assert events(queue, 1)[-1] == ("refused", "pending", "pending")


def test_quorum_needs_distinct_approvers(store_url):
    queue, _ = make_queue(store_url)
    submit_one(queue, decision(quorum=2))
    assert queue.approve([1], actor="alice")[0].status == "pending"
    with pytest.raises(PermissionDenied, match="already approved it; its quorum needs 2"):
        queue.approve([1], actor="alice")
    assert queue.approve([1], actor="carol")[0].status == "completed"
    assert [a["actor"] for a in queue.show(1)["approvals"]] == ["alice", "carol"]


def test_submitter_of_a_manual_action_cannot_approve_it(store_url):
    queue, _ = make_queue(store_url)
    submit_one(queue, decision(source="manual"), actor="alice")
    with pytest.raises(PermissionDenied, match="submitted this manual action"):
        queue.approve([1], actor="alice")
    assert queue.approve([1], actor="carol")[0].status == "completed"


def test_require_comment(store_url):
    queue, _ = make_queue(store_url)
    submit_one(queue, decision(require_comment=True))
    with pytest.raises(PermissionDenied, match="requires a comment"):
        queue.approve([1], actor="alice")
    assert queue.approve([1], actor="alice", comment="confirmed")[0].status == "completed"


def test_bulk_needs_one_action_type_and_changes_nothing_otherwise(store_url):
    queue, _ = make_queue(store_url)
    queue.submit([decision("a"), decision("b", "contain_device")], actor="bob")
    with pytest.raises(UsageError, match="share an action type"):
        queue.approve([1, 2], actor="alice")
    assert {a.status for a in queue.list_actions(ActionFilter())} == {"pending"}
    queue.submit([decision("c")], actor="bob")
    assert [a.status for a in queue.approve([1, 3], actor="alice")] == ["completed"] * 2


def test_reserved_actor_names(store_url):
    queue, _ = make_queue(store_url)
    submit_one(queue, decision())
    with pytest.raises(UsageError, match="reserved"):
        queue.approve([1], actor="automation")


def test_undo_and_undo_roles(store_url):
    queue, _ = make_queue(store_url)
    submit_one(queue, decision("u1", "contain_user", entity_type="user",
                               roles=("security-admin",)))
    queue.approve([1], actor="erin")
    with pytest.raises(PermissionDenied, match="erin holds security-admin.*global-admin"):
        queue.undo([1], actor="erin")
    [a] = queue.undo([1], actor="root")
    assert a.status == "undone" and a.result["operation"] == "undo"


def test_undo_of_an_action_without_undo(store_url):
    queue, _ = make_queue(store_url)
    submit_one(queue, decision(action="run_antivirus_scan"))
    queue.approve([1], actor="alice")
    with pytest.raises(TransitionError, match="has no undo"):
        queue.undo([1], actor="alice")


def test_undo_all_instances_of_a_file_hash(store_url):
    queue, _ = make_queue(store_url)
    files = [decision(f"f{i}", "quarantine_file", entity_type="file", required=False,
                      fields={"fileDetails": {"sha256": "AB" if i < 2 else "CD"}})
             for i in range(3)]
    queue.submit(files, actor="bob")
    undone = queue.undo([1], actor="alice", all_instances=True)
    assert sorted(a.id for a in undone) == [1, 2]
    assert queue.get(3).status == "completed"


def test_redo_supersedes_and_needs_approval(store_url):
    queue, _ = make_queue(store_url)
    submit_one(queue, decision("m1", "soft_delete_email", entity_type="analyzedMessage",
                               roles=("search-and-purge",)))
    queue.approve([1], actor="dave")
    new = queue.redo(1, action_type="move_to_inbox", actor="dave")
    assert (new.status, new.link_id, new.source) == ("pending", 1, "manual")
    assert queue.get(1).status == "superseded" and queue.get(1).superseded_by == new.id
    with pytest.raises(PermissionDenied, match="submitted this manual action"):
        queue.approve([new.id], actor="dave")
    assert queue.approve([new.id], actor="root")[0].status == "completed"


@pytest.mark.parametrize(("action", "message"), [
    ("isolate_device", "already is"),
    ("no_such_action", "unknown action type"),
    ("soft_delete_email", "does not apply to a device"),
])
def test_redo_refuses_bad_types(store_url, action, message):
    queue, _ = make_queue(store_url)
    submit_one(queue, decision(required=False))
    with pytest.raises(UsageError, match=message):
        queue.redo(1, action_type=action, actor="alice")


def test_redo_of_a_pending_action_is_a_transition_error(store_url):
    queue, _ = make_queue(store_url)
    submit_one(queue, decision())
    with pytest.raises(TransitionError, match="cannot redo action 1: it is pending"):
        queue.redo(1, action_type="contain_device", actor="alice")


def test_timed_revert(store_url):
    queue, clock = make_queue(store_url)
    out = submit_one(queue, decision(required=False, revert_after=86400))
    assert out.action.revert_at == "2024-05-02T12:00:00.000000Z"
    clock.advance(hours=23)
    assert queue.maintain().reverted == []
    clock.advance(hours=1)
    assert queue.tick().reverted == [1]
    assert queue.get(1).status == "undone"
    assert events(queue, 1)[-1] == ("reverted", "running", "undone")


@pytest.mark.parametrize(("counts", "status"), [
    ({}, "no threats found"),
    ({"pending": 1, "completed": 3}, "pending approval"),
    ({"running": 1, "completed": 1}, "running"),
    ({"failed": 1, "completed": 1}, "failed"),
    ({"expired": 1, "completed": 1}, "terminated by system"),
    ({"rejected": 1, "completed": 1}, "partially remediated"),
    ({"completed": 2, "deduplicated": 1}, "remediated"),
    ({"completed": 2, "superseded": 1}, "remediated"),  # the replacement speaks for it
    ({"undone": 2}, "partially remediated"),  # every effect reversed: not remediated
    ({"completed": 1, "undone": 1}, "partially remediated"),
    ({"superseded": 1, "pending": 1}, "pending approval"),
])
def test_investigation_status(counts, status):
    assert derive(counts) == status


def test_history_filters(store_url):
    queue, _ = make_queue(store_url)
    queue.submit([decision("a"), decision("b", "contain_device", source="manual")],
                 actor="bob")
    queue.approve([1], actor="alice")
    queue.reject([2], actor="carol", reason="no")
    settled = ActionFilter(statuses=("completed", "rejected"), newest_first=True,
                           by_update=True)
    assert len(queue.list_actions(settled)) == 2
    assert [a.id for a in queue.list_actions(ActionFilter(source="manual"))] == [2]
    assert [a.id for a in queue.list_actions(ActionFilter(decided_by="carol"))] == [2]
    assert [a.id for a in queue.list_actions(ActionFilter(action_type="isolate_device"))] == [1]


def test_limited_listing_over_several_statuses_keeps_the_order(store_url):
    # With a limit, each status is read on its own and the results merged: the order
    # and the cut must be those of one query over all of them.
    queue, clock = make_queue(store_url)
    queue.submit([decision(f"dev{i}") for i in range(12)], actor="bob")
    for action_id in (9, 2, 11, 4):  # settled in an order other than their ids
        clock.advance(minutes=1)
        queue.reject([action_id], actor="carol", reason="no")
    clock.advance(minutes=1)
    for action_id in (7, 1):
        queue.approve([action_id], actor="alice")  # the same instant: ties go by id
    statuses = ("pending", "rejected", "completed")
    for flt in (ActionFilter(statuses=statuses),
                ActionFilter(statuses=statuses, newest_first=True),
                ActionFilter(statuses=("completed", "rejected"), newest_first=True,
                             by_update=True),
                ActionFilter(statuses=("rejected", "completed"), by_update=True)):
        every = [a.id for a in queue.list_actions(flt)]
        assert len(every) > 5
        for limit in (1, 3, 5, 100):
            limited = ActionFilter(**{**flt.__dict__, "limit": limit})
            assert [a.id for a in queue.list_actions(limited)] == every[:limit]
    newest = queue.list_actions(ActionFilter(statuses=("completed", "rejected"),
                                             newest_first=True, by_update=True, limit=3))
    assert [a.id for a in newest] == [7, 1, 4]
