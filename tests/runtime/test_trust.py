"""Issue 14, section 2 through the library: four-eyes rules that must not be walked around."""

from __future__ import annotations

import pytest

from airgate.engine.core import compile as compile_engine
from airgate.errors import InputError, PermissionDenied, UsageError
from airgate.policy.loader import load_policy_text
from airgate.runtime.clock import parse_stored_time
from airgate.runtime.config import Config, load_config
from runtime_helpers import USERS, decision, events, make_queue

CONTAIN_POLICY = """\
apiVersion: airgate/v1
kind: Policy
metadata: {name: strict}
spec:
  rules:
    - id: strict.contain
      match: {verdict: malicious, entity: device}
      action: contain_device
      approval: {roles: [active-remediation], quorum: 2, require_comment: true,
                 expires_after: 1h}
"""

EXCLUDE_POLICY = CONTAIN_POLICY + """\
    - id: strict.never-contain
      effect: exclude
      reason: a lab machine
      match: {entity: device}
      actions: [contain_device]
"""


def engine(text: str):  # type: ignore[no-untyped-def]
    return compile_engine(load_policy_text(text))


def settled_isolation(store_url, **approval):  # type: ignore[no-untyped-def]
    queue, clock = make_queue(store_url)
    queue.submit([decision(**approval)], actor="bob")
    for who in ("alice", "carol", "root")[:int(approval.get("quorum", 1))]:
        queue.approve([1], actor=who, comment="ok")
    queue.undo([1], actor="alice")
    return queue, clock


def test_redo_needs_the_new_types_approver_role(store_url):
    queue, _ = settled_isolation(store_url)
    with pytest.raises(PermissionDenied, match="erin holds security-admin; changing an action"
                                               " to contain_device needs one of"):
        queue.redo(1, action_type="contain_device", actor="erin")
    assert queue.get(1).status == "undone"
    assert events(queue, 1)[-1] == ("refused", "undone", "undone")


def test_redo_takes_the_policys_stronger_approval(store_url):
    queue, clock = settled_isolation(store_url)  # quorum 1, no comment, 7 days
    new = queue.redo(1, action_type="contain_device", actor="alice",
                     engine=engine(CONTAIN_POLICY))
    assert {k: new.approval[k] for k in ("quorum", "require_comment", "expires_after")} == {
        "quorum": 2, "require_comment": True, "expires_after": 3600}
    assert new.expires_at is not None
    assert (parse_stored_time(new.expires_at) - clock.now()).total_seconds() == 3600
    assert queue.approve([new.id], actor="carol", comment="yes")[0].status == "pending"


def test_redo_is_never_weaker_than_the_old_action(store_url):
    queue, _ = settled_isolation(store_url, quorum=3, dedup_window=7200)
    new = queue.redo(1, action_type="contain_device", actor="alice",
                     engine=engine(CONTAIN_POLICY))
    assert (new.approval["quorum"], new.approval["dedup_window"]) == (3, 7200)
    assert new.approval["roles"] == ["active-remediation"]


def test_redo_without_a_matching_rule_keeps_the_catalog_role_and_old_settings(store_url):
    queue, _ = settled_isolation(store_url, quorum=2)
    new = queue.redo(1, action_type="contain_device", actor="alice",
                     engine=engine(CONTAIN_POLICY.replace("malicious", "suspicious")))
    assert (new.approval["quorum"], new.approval["roles"]) == (2, ["active-remediation"])


def test_redo_to_an_excluded_action_is_refused(store_url):
    queue, _ = settled_isolation(store_url)
    with pytest.raises(PermissionDenied, match="excludes contain_device.*strict.never-contain"):
        queue.redo(1, action_type="contain_device", actor="root",
                   engine=engine(EXCLUDE_POLICY))
    assert queue.get(1).status == "undone"


@pytest.mark.parametrize("name", ["automation", "system", "AUTOMATION", " system\t"])
def test_submit_refuses_reserved_names(store_url, name):
    queue, _ = make_queue(store_url)
    with pytest.raises(UsageError, match="reserved for airgate itself"):
        queue.submit([decision()], actor=name)
    assert queue.investigations() == []


def test_a_persons_submission_is_manual_whatever_the_evidence_says(store_url):
    queue, _ = make_queue(store_url)
    [made] = queue.submit([decision(source="automatedInvestigation")], actor="alice")
    assert made.action is not None and made.action.source == "manual"
    with pytest.raises(PermissionDenied, match="submitted this manual action"):
        queue.approve([1], actor="ALICE")
    assert queue.show(1)["evidence"][0]["data"]["action_source"] == "automatedInvestigation"


def test_an_automation_identity_keeps_the_evidence_source_under_its_normal_name(store_url):
    queue, _ = make_queue(store_url)
    [made] = queue.submit([decision(source="antivirus")], actor="Bob")
    assert made.action is not None
    assert (made.action.source, made.action.submitted_by) == ("antivirus", "bob")


def test_actor_names_are_normalized():
    from airgate.runtime.config import normalize_actor

    assert normalize_actor("  Ａlice \t Smith ") == "alice smith"
    assert normalize_actor("STRASSE") == normalize_actor("straße")
    config = Config(users={"Alice": ("global-admin",)})
    assert config.roles_of("alice ") == ("global-admin",)


def test_two_approvals_by_two_spellings_are_one(store_url):
    queue, _ = make_queue(store_url, users={**USERS, "Dana": ("active-remediation",)})
    queue.submit([decision(quorum=2)], actor="bob")
    queue.approve([1], actor="dana")
    with pytest.raises(PermissionDenied, match="dana already approved it"):
        queue.approve([1], actor="ＤＡＮＡ")
    assert [a["actor"] for a in queue.show(1)["approvals"]] == ["dana"]


def test_control_characters_in_an_actor_are_refused(store_url):
    queue, _ = make_queue(store_url)
    queue.submit([decision()], actor="bob")
    with pytest.raises(UsageError, match="control characters"):
        queue.approve([1], actor="alice\x1b[2J")


def test_duplicate_automation_names_are_located(tmp_path):
    path = tmp_path / "airgate.yaml"
    path.write_text("automation: [soar, ' SOAR']\n")
    with pytest.raises(InputError, match=r"airgate.yaml:1:\d+: automation: ' SOAR' and 'soar'"):
        load_config(path)


def test_an_expiry_past_year_9999_is_the_end_of_time_not_a_crash(store_url):
    queue, _ = make_queue(store_url)
    [made] = queue.submit([decision(expires_after=999_999_999 * 604_800)], actor="bob")
    assert made.action is not None and made.action.expires_at is not None
    assert made.action.expires_at.startswith("9999-12-31T23:59:59")
    assert queue.expire() == []
