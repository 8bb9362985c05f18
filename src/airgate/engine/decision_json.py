"""One decision as one line of JSON, fast, for ``airgate evaluate --format ndjson``.

Building :func:`airgate.engine.decision_to_dict` and encoding it cost more per
item than matching did on million-item streams. The text here is assembled from
pieces instead, the repeated ones (action and its catalog names, approval, rule
lists) encoded once and remembered. The result is byte for byte
``json.dumps(decision_to_dict(decision, catalog), ensure_ascii=False,
default=str)`` (tests check it): any value of a type the shortcut does not
handle exactly takes that general path instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

from airgate.catalog import DEFAULT_CATALOG, Catalog
from airgate.model import Approval, Decision, EntityRef

_CACHE_LIMIT = 4096  # entries per cache; past it, pieces are encoded each time
_NO_ENTITY = EntityRef("", "", "")
_NO_APPROVAL = Approval()


def _exact_strings(values: tuple[Any, ...]) -> bool:
    return all(type(v) is str for v in values)


def _plain_scalars(approval: Approval) -> bool:
    return (type(approval.required) is bool and type(approval.require_comment) is bool
            and type(approval.quorum) is int and type(approval.expires_after) is int
            and type(approval.dedup_window) is int)


def _canonical(approval: Approval) -> bool:
    # Equal approvals may still encode differently (1 == 1.0 == True): remember and
    # reuse only the text of plainly typed ones.
    return (_plain_scalars(approval) and type(approval.roles) is tuple
            and _exact_strings(approval.roles))


def decision_to_dict(decision: Decision, catalog: Catalog | None = None) -> dict[str, Any]:
    """The stable JSON form of a decision (schemas/decision.schema.json).

    ``catalog`` (the policy set's) names custom actions; built-in ones are known anyway.
    """
    spec = (catalog or DEFAULT_CATALOG).get(decision.action)
    return {
        "investigation": decision.investigation,
        "entity": {"type": decision.entity.type, "key": decision.entity.key,
                   "name": decision.entity.name},
        "action": decision.action,
        "action_display_name": spec.display_name if spec else decision.action,
        "category": spec.category if spec else "custom",
        "approval": decision.approval.as_dict(),
        "rules": list(decision.rules),
        "excluded": decision.excluded,
        "suppressed_by": list(decision.suppressed_by),
        "reasons": list(decision.reasons),
        "revert_after": decision.revert_after,
        "max_automatic_per_hour": decision.max_automatic_per_hour,
        "verdict": decision.evidence.verdict if decision.evidence is not None else None,
    }


def decision_encoder(catalog: Catalog | None = None) -> Callable[[Decision], str]:
    """A function turning a decision into its JSON text (schemas/decision.schema.json).

    Same text as ``json.dumps(decision_to_dict(d, catalog), ensure_ascii=False,
    default=str)``. Its caches are bounded: safe on unbounded streams.
    """
    encode = json.JSONEncoder(ensure_ascii=False, default=str).encode
    actions: dict[str, str] = {}
    approvals: dict[Approval, tuple[Approval, str]] = {}  # -> (the approval encoded, text)
    lists: dict[tuple[str, ...], str] = {}

    def general(decision: Decision) -> str:
        return encode(decision_to_dict(decision, catalog))

    def action_text(action: str) -> str:
        found = actions.get(action)
        if found is None:
            # The three action keys of decision_to_dict, in its order, without the braces.
            sample = decision_to_dict(Decision("", _NO_ENTITY, action, _NO_APPROVAL, ()), catalog)
            found = encode({k: sample[k] for k in ("action", "action_display_name",
                                                   "category")})[1:-1]
            if len(actions) < _CACHE_LIMIT:
                actions[action] = found
        return found

    def approval_text(approval: Approval) -> str | None:
        known = approvals.get(approval)
        if known is not None:
            # Most decisions carry their rule's own approval object: nothing to check.
            # An equal one has equal roles, so strings: only its scalars may differ.
            if known[0] is approval or _plain_scalars(approval):
                return known[1]
            return None
        if not _canonical(approval):
            return None
        found = encode(approval.as_dict())
        if len(approvals) < _CACHE_LIMIT:
            approvals[approval] = (approval, found)
        return found

    def list_text(values: tuple[str, ...]) -> str | None:
        if type(values) is not tuple:
            return None
        if not values:
            return "[]"
        found = lists.get(values)
        if found is None:
            # A tuple equal to a tuple of strings holds strings: the check at insertion
            # is enough for every later hit.
            if not _exact_strings(values):
                return None
            found = encode(list(values))
            if len(lists) < _CACHE_LIMIT:
                lists[values] = found
        return found

    def encode_decision(decision: Decision) -> str:
        entity = decision.entity
        investigation, etype, key, name = (decision.investigation, entity.type, entity.key,
                                           entity.name)
        action = decision.action
        evidence = decision.evidence
        verdict = evidence.verdict if evidence is not None else None
        revert, per_hour = decision.revert_after, decision.max_automatic_per_hour
        reasons = decision.reasons
        if not (type(investigation) is str and type(etype) is str and type(key) is str
                and type(name) is str and type(action) is str
                and (verdict is None or type(verdict) is str)
                and (revert is None or type(revert) is int)
                and (per_hour is None or type(per_hour) is int)
                and type(reasons) is tuple):
            return general(decision)
        approval = approval_text(decision.approval)
        rules = list_text(decision.rules)
        suppressed = decision.suppressed_by
        suppressed_text = list_text(suppressed)
        if approval is None or rules is None or suppressed_text is None:
            return general(decision)
        return (
            f'{{"investigation": {encode_basestring(investigation)},'
            f' "entity": {{"type": {encode_basestring(etype)},'
            f' "key": {encode_basestring(key)}, "name": {encode_basestring(name)}}},'
            f' {action_text(action)}, "approval": {approval}, "rules": {rules},'
            f' "excluded": {"true" if decision.excluded else "false"},'
            f' "suppressed_by": {suppressed_text},'
            f' "reasons": {encode(list(reasons)) if reasons else "[]"},'
            f' "revert_after": {"null" if revert is None else int.__repr__(revert)},'
            f' "max_automatic_per_hour":'
            f' {"null" if per_hour is None else int.__repr__(per_hour)},'
            f' "verdict": {"null" if verdict is None else encode_basestring(verdict)}}}'
        )

    return encode_decision
