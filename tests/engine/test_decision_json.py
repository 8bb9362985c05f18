"""The fast decision encoder writes exactly what encoding decision_to_dict writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from airgate.catalog import DEFAULT_CATALOG, ActionSpec
from airgate.engine import compile, decision_json, decision_to_dict
from airgate.engine.decision_json import decision_encoder
from airgate.evidence.reader import load_evidence
from airgate.model import Approval, Decision, EntityRef, Evidence
from airgate.policy.loader import load_policy_text
from helpers import ROOT

EV = Evidence("i", "file", "malicious", "file:k", "n", {})
APPROVAL = Approval(roles=("r",))


def reference(decision: Decision, catalog: Any = None) -> str:
    return json.dumps(decision_to_dict(decision, catalog), ensure_ascii=False, default=str)


def dec(**changes: Any) -> Decision:
    base: dict[str, Any] = {
        "investigation": "inv-1", "entity": EntityRef("file", "file:k", "x.exe"),
        "action": "quarantine_file", "approval": APPROVAL, "rules": ("a",), "evidence": EV,
    }
    base.update(changes)
    return Decision(**base)


ODD: list[Decision] = [
    dec(),
    dec(investigation="ünï \u2028 \x00 \x1f \"q\" \\ \ud800 \U0001f600"),
    dec(entity=EntityRef("user", "user:\udcff", "名前\n\t")),
    dec(action="not_in_catalog"),
    dec(action="custom\x07"),
    dec(approval=Approval(required=False, roles=("a", "b"), quorum=3, require_comment=True)),
    dec(approval=Approval(roles=("r",), quorum=True)),  # equal to quorum=1, encodes as true
    dec(approval=Approval(roles=("r",), quorum=1.0)),  # type: ignore[arg-type]
    dec(approval=Approval(roles=("r",), expires_after=10**30)),
    dec(approval=Approval(roles=(1,))),  # type: ignore[arg-type]
    dec(approval=Approval(roles=("r",), dedup_window=-5)),
    dec(rules=("b", "a", "é")),
    dec(rules=()),
    dec(rules=(1, 2)),  # type: ignore[arg-type]
    dec(rules=(True,)),  # type: ignore[arg-type]
    dec(rules=["a"]),  # type: ignore[arg-type]
    dec(suppressed_by=("x", "y")),
    dec(suppressed_by=(1,)),  # type: ignore[arg-type]
    dec(reasons=("device group 'é\x1b' has automation level none",)),
    dec(reasons=["r"]),  # type: ignore[arg-type]
    dec(revert_after=3600, max_automatic_per_hour=0),
    dec(revert_after=True, max_automatic_per_hour=1.5),  # type: ignore[arg-type]
    dec(revert_after=-(10**20)),
    dec(evidence=None),
    dec(evidence=Evidence("i", "file", 7, "k", "n", {})),  # type: ignore[arg-type]
    dec(investigation=5),  # type: ignore[arg-type]
    dec(entity=EntityRef("file", b"bytes", None)),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("decision", ODD, ids=range(len(ODD)))
def test_odd_decisions_encode_like_the_general_path(decision: Decision) -> None:
    assert decision_encoder()(decision) == reference(decision)


def test_one_encoder_over_everything_keeps_agreeing() -> None:
    # One encoder for all: cached pieces of earlier decisions must not leak into
    # later ones that compare equal but encode differently (1 == 1.0 == True).
    encode = decision_encoder()
    for decision in [*ODD, *reversed(ODD), *ODD]:
        assert encode(decision) == reference(decision)


def test_custom_catalog_names() -> None:
    catalog = DEFAULT_CATALOG.with_custom([ActionSpec(
        "open_ticket", "Open a tícket \u2028", "custom", frozenset({"file"}), custom=True)])
    encode = decision_encoder(catalog)
    for decision in (dec(action="open_ticket"), dec(), dec(action="other")):
        assert encode(decision) == reference(decision, catalog)
        assert json.loads(encode(decision)) == decision_to_dict(decision, catalog)


def test_bounded_caches_still_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decision_json, "_CACHE_LIMIT", 2)
    encode = decision_encoder()
    decisions = [dec(rules=(f"r{i}",), action=f"a{i}", approval=Approval(roles=("r",), quorum=i))
                 for i in range(1, 8)]
    for decision in decisions * 2:
        assert encode(decision) == reference(decision)


def test_engine_decisions_of_the_benchmark_agree(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import synth
    finally:
        sys.path.pop(0)
    policy = load_policy_text(synth.policy_yaml(synth.make_rules()), "bench.yaml")
    synth.write_ndjson(str(tmp_path / "items.ndjson"), 3000)
    decisions = compile(policy).evaluate(load_evidence(tmp_path / "items.ndjson"))
    assert len(decisions) > 1000
    assert any(len(d.rules) > 1 for d in decisions)
    assert any(d.excluded for d in decisions)
    encode = decision_encoder(policy.catalog)
    for decision in decisions:
        assert encode(decision) == reference(decision, policy.catalog)
