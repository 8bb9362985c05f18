"""Loading policies into the frozen model: approvals, conditions, custom actions, errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from airgate.errors import PolicyLoadErrors
from airgate.model import AUTO, AllOf, AnyOf, Approval, Condition, NotOf
from airgate.policy.loader import load_policy_set, load_policy_text

HEAD = """\
apiVersion: airgate/v1
kind: Policy
metadata:
  name: p
"""


def policy(spec: str) -> str:
    return HEAD + "spec:\n" + spec


def rule_approval(spec: str) -> Approval | None:
    (rule,) = load_policy_text(policy(spec)).rules
    return rule.approval


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "  rules:\n    - {id: r, match: {}, action: isolate_device}\n",
            Approval(),
        ),
        (
            "  rules:\n    - {id: r, match: {}, action: isolate_device, approval: auto}\n",
            AUTO,
        ),
        (
            "  defaults: {approval: auto}\n"
            "  rules:\n    - {id: r, match: {}, action: isolate_device}\n",
            AUTO,
        ),
        (
            "  defaults: {approval: auto}\n"
            "  rules:\n    - {id: r, match: {}, action: isolate_device, approval: required}\n",
            Approval(),
        ),
        (
            "  defaults: {approval: {quorum: 2, expires_after: 1d, roles: [global-admin]}}\n"
            "  rules:\n    - {id: r, match: {}, action: isolate_device,"
            " approval: {dedup_window: 15m, require_comment: true}}\n",
            Approval(
                roles=("global-admin",), quorum=2, expires_after=86400, dedup_window=900,
                require_comment=True,
            ),
        ),
        (
            "  defaults: {approval: auto}\n"
            "  rules:\n    - {id: r, match: {}, action: isolate_device, approval: {quorum: 3}}\n",
            Approval(quorum=3),
        ),
        (
            "  rules:\n    - {id: r, match: {}, action: isolate_device,"
            " approval: {required: false, expires_after: 90s}}\n",
            Approval(required=False, expires_after=90),
        ),
    ],
    ids=["none", "auto", "default-auto", "required-over-default", "merged", "object-requires",
         "object-auto"],
)
def test_approval_resolution(spec: str, expected: Approval) -> None:
    assert rule_approval(spec) == expected


def test_rule_fields_and_conditions() -> None:
    text = policy(
        "  rules:\n"
        "    - id: r1\n"
        "      description: quarantine bad files\n"
        "      match:\n"
        "        verdict: [Malicious, No threats found]\n"
        "        entity: file\n"
        "        where:\n"
        "          - {field: fileDetails.filePath, glob: '*\\temp\\*'}\n"
        "          - any:\n"
        "              - {field: ip, cidr: 10.0.0.0/8}\n"
        "              - not: {field: tags, in: [a, b]}\n"
        "      action: quarantine_file\n"
        "      revert_after: 1h\n"
        "      max_automatic_per_hour: 5\n"
    )
    (rule,) = load_policy_text(text, file="mem.yaml").rules
    assert rule.id == "r1" and rule.policy == "p" and rule.effect == "action"
    assert rule.verdicts == {"malicious", "noThreatsFound"}
    assert rule.entity_types == {"file"}
    assert rule.description == "quarantine bad files"
    assert rule.revert_after == 3600 and rule.max_automatic_per_hour == 5
    assert (rule.location.file, rule.location.line, rule.location.column) == ("mem.yaml", 7, 7)
    assert rule.where == AllOf(
        (
            Condition("fileDetails.filePath", "glob", "*\\temp\\*"),
            AnyOf(
                (
                    Condition("ip", "cidr", ("10.0.0.0/8",)),
                    NotOf(Condition("tags", "in", ("a", "b"))),
                )
            ),
        )
    )
    assert isinstance(rule.where, AllOf)
    first = rule.where.items[0]
    assert (first.location.line, first.location.column) == (13, 13)


def test_single_condition_is_not_wrapped() -> None:
    text = policy(
        "  rules:\n    - {id: r, match: {where: {field: a, exists: true}}, action: kill_process}\n"
    )
    (rule,) = load_policy_text(text).rules
    assert rule.where == Condition("a", "exists", True)


def test_exclusion_rule() -> None:
    text = policy(
        "  rules:\n"
        "    - id: keep-dc\n"
        "      match: {entity: device, where: {field: rbacGroupName, eq: dc}}\n"
        "      effect: exclude\n"
        "      reason: never isolate a domain controller\n"
        "      actions: [isolate_device, contain_device]\n"
        "      expires: 2999-12-31\n"
    )
    (rule,) = load_policy_text(text).rules
    assert rule.effect == "exclude" and rule.action is None and rule.approval is None
    assert rule.reason == "never isolate a domain controller"
    assert rule.excluded_actions == {"isolate_device", "contain_device"}
    assert rule.expires == dt.date(2999, 12, 31)
    assert not rule.is_expired(dt.date(2030, 1, 1))


def test_custom_actions_join_the_catalog_and_their_targets_are_entity_types() -> None:
    text = policy(
        "  actions:\n"
        "    - id: open_ticket\n"
        "      display_name: Open a ticket\n"
        "      targets: [device, ticket]\n"
        "      undo_action: close_ticket\n"
        "    - {id: page_oncall, targets: [user], category: identity}\n"
        "  rules:\n"
        "    - {id: r, match: {entity: ticket}, action: open_ticket}\n"
        "    - {id: s, match: {entity: user}, action: page_oncall}\n"
    )
    ps = load_policy_text(text)
    ticket = ps.catalog.get("open_ticket")
    assert ticket is not None and ticket.custom and ticket.display_name == "Open a ticket"
    assert ticket.targets == {"device", "ticket"}
    assert ticket.undo is not None and ticket.undo.action == "close_ticket"
    assert ticket.approver_role == "security-admin"
    page = ps.catalog.get("page_oncall")
    assert page is not None and page.undo is None and page.category == "identity"
    assert ps.catalog.get("isolate_device") is not None


def test_automation_block() -> None:
    text = policy("  automation:\n    default_group: semi-core\n    groups: {servers: none}\n")
    ps = load_policy_text(text)
    assert ps.automation is not None
    assert ps.automation.level_for("servers") == "none"
    assert ps.automation.level_for("laptops") == "semi-core"
    assert ps.automation.level_for(None) == "semi-core"
    assert ps.policies[0].automation == ps.automation


def test_several_documents_and_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text(
        policy("  rules:\n    - {id: a, match: {}, action: kill_process}\n")
        + "---\n"
        + HEAD.replace("name: p", "name: q")
        + "spec: {rules: [{id: b, match: {}, action: kill_process}]}\n"
    )
    (tmp_path / "sub" / "c.yml").write_text(
        HEAD.replace("name: p", "name: c") + "spec: {rules: [{id: c, match: {}, action: my_act}]}\n"
    )
    # A custom action declared in a later file is usable by an earlier one.
    (tmp_path / "sub" / "d.yaml").write_text(
        HEAD.replace("name: p", "name: d") + "spec: {actions: [{id: my_act, targets: [device]}]}\n"
    )
    (tmp_path / "notes.txt").write_text("not a policy")
    ps = load_policy_set(tmp_path)
    assert [p.name for p in ps.policies] == ["p", "q", "c", "d"]
    assert [r.id for r in ps.rules] == ["a", "b", "c"]
    assert ps.policies[2].file == str(tmp_path / "sub" / "c.yml")
    # The same file given twice is loaded once (no duplicate rule ids).
    again = load_policy_set([tmp_path, tmp_path / "a.yaml"])
    assert len(again.rules) == 3


def test_errors_raise_with_every_finding() -> None:
    text = policy(
        "  rules:\n"
        "    - {id: r, match: {}, action: nuke}\n"
        "    - {id: r, match: {entity: devcie}, action: isolate_device}\n"
    )
    with pytest.raises(PolicyLoadErrors, match=r"unknown action 'nuke' \(and 2 more\)") as info:
        load_policy_text(text, file="x.yaml")
    assert [str(f) for f in info.value.findings] == [
        "x.yaml:7:34: error: unknown-action: unknown action 'nuke'",
        "x.yaml:8:12: error: duplicate-rule-id: rule id 'r' is already used at x.yaml:7:12",
        "x.yaml:8:31: error: unknown-entity: unknown entity type 'devcie' (did you mean 'device'?)",
    ]


def test_warnings_do_not_stop_loading() -> None:
    text = policy(
        "  rules:\n"
        "    - {id: r, match: {}, effect: exclude, reason: old, expires: 2001-01-01}\n"
    )
    (rule,) = load_policy_text(text).rules
    assert rule.is_expired(dt.date(2024, 1, 1))


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty"),
        ("# only a comment\n", "no-policy"),
        ("a: [1\n", "yaml"),
        ("- 1\n", "schema"),
        ("x" * (1024 * 1024 + 1), "too-large"),
    ],
)
def test_load_policy_text_input_errors(text: str, code: str) -> None:
    with pytest.raises(PolicyLoadErrors, match=r".") as info:
        load_policy_text(text)
    assert info.value.findings[0].code == code


def test_missing_path_is_a_finding(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadErrors, match="no such file or directory"):
        load_policy_set(tmp_path / "nope.yaml")
