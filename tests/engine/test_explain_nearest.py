"""Nearest rules for evidence that got no decision: only rules whose action can act on it."""

from __future__ import annotations

import pytest

from airgate.engine.core import Engine
from airgate.engine.core import compile as compile_engine
from airgate.engine.explain import explain_unmatched, nearest_rules, unmatched_text
from airgate.evidence.reader import load_evidence
from airgate.model import Evidence
from airgate.policy.loader import load_policy_text
from helpers import evidence_stream, policy_doc

POLICY = policy_doc("""\
    - {id: delete-message, match: {verdict: malicious, entity: analyzedMessage},
       action: soft_delete_email}
    - {id: block-email-url, match: {verdict: malicious, entity: url,
       where: {field: networkMessageIds, exists: true}}, action: block_url}
    - {id: quarantine-big, match: {verdict: malicious, entity: file,
       where: {field: fileDetails.fileSize, gt: 100}}, action: quarantine_file}
    - {id: isolate, match: {verdict: malicious, entity: device}, action: isolate_device}
""")


def one(entity_type: str, verdict: str, fields: str) -> Evidence:
    [found] = load_evidence([evidence_stream(
        "apiVersion: airgate/v1\nkind: Investigation\nid: inv-1\nevidence:\n"
        f"  - {{type: {entity_type}, verdict: {verdict}, fields: {fields}}}\n")])
    return found


@pytest.fixture(scope="module")
def engine() -> Engine:
    return compile_engine(load_policy_text(POLICY))


def test_an_ip_has_no_nearest_rules_when_no_action_can_act_on_it(engine: Engine) -> None:
    ip = one("ip", "malicious", "{ipAddress: 203.0.113.80}")
    # Before: the condition-free email rule came first, as "nearest" to an address.
    assert nearest_rules(engine.compiled, ip) == []
    lines = unmatched_text(explain_unmatched(engine.compiled, ip))
    assert lines[1] == "  (no action rule of the policy set can act on entity type ip)"


def test_a_url_from_an_endpoint_alert_is_near_the_url_rule_only(engine: Engine) -> None:
    url = one("url", "malicious", "{url: 'http://x.example/'}")
    assert [t.rule.id for t in nearest_rules(engine.compiled, url)] == ["block-email-url"]


def test_wrong_verdict_ranks_among_rules_that_can_act(engine: Engine) -> None:
    small = one("file", "suspicious", "{fileDetails: {fileSize: 5, sha256: ab}}")
    # Not admitted (the verdict fails), so ranked by distance, yet only file rules.
    assert [t.rule.id for t in nearest_rules(engine.compiled, small)] == ["quarantine-big"]
