"""The API's request and response bodies: pydantic models, so that the published
OpenAPI document says exactly what each endpoint takes and gives."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

MAX_IDS = 10_000  # one bulk request; far more than a page of the Action center
# Ids live in INTEGER columns (32 bits on PostgreSQL): a bigger number is a typo, refused
# as 422 rather than an overflow deep in the driver.
ActionId = Annotated[int, Field(ge=1, le=2**31 - 1)]


class Action(BaseModel):
    """One action in the queue, as ``airgate actions --format json`` shows it."""

    id: int
    investigation: str
    entity_type: str
    entity_key: str
    entity_name: str
    action_type: str
    status: str
    version: int
    source: str
    rules: list[str]
    approval: dict[str, Any]
    created_at: str
    updated_at: str
    submitted_by: str
    entity_hash: str | None = None
    reasons: list[str] = []
    undo: dict[str, Any] | None = None
    undoable: bool = False
    revert_after: int | None = None
    revert_at: str | None = None
    max_automatic_per_hour: int | None = None
    expires_at: str | None = None
    approved_at: str | None = None
    decided_by: str | None = None
    decided_at: str | None = None
    reason: str | None = None
    link_id: int | None = None
    superseded_by: int | None = None
    operation: str | None = None
    run_key: str | None = None
    started_at: str | None = None
    result: Any = None
    error: str | None = None


class HistoryAction(Action):
    undone_by: str | None = None


class ActionPage(BaseModel):
    items: list[Action]
    next_cursor: str | None = Field(
        None, description="Pass as ?cursor= for the next page; null on the last page.")


class HistoryPage(BaseModel):
    items: list[HistoryAction]
    next_cursor: str | None = None


class EntityOut(BaseModel):
    type: str
    key: str
    name: str


class DecisionOut(BaseModel):
    """A decision as ``airgate evaluate --format json`` gives it (schemas/decision)."""

    investigation: str
    entity: EntityOut
    action: str
    action_display_name: str
    category: str
    approval: dict[str, Any]
    rules: list[str]
    excluded: bool
    suppressed_by: list[str]
    reasons: list[str]
    revert_after: int | None = None
    max_automatic_per_hour: int | None = None
    verdict: str | None = None


class FindingOut(BaseModel):
    file: str
    line: int | None = None
    column: int | None = None
    json_path: str
    severity: str
    code: str
    message: str


class Outcome(BaseModel):
    """What one decision became. ``action`` and ``decision`` are there with ``?full=true``."""

    outcome: str = Field(description="created, merged, excluded, unchanged...")
    action_id: int | None = None
    status: str | None = None
    investigation: str
    action_type: str
    entity_type: str
    entity_name: str
    excluded_by: list[str] = []
    action: Action | None = None
    decision: DecisionOut | None = None


class SubmitResult(BaseModel):
    outcomes: list[Outcome]
    investigations: list[str]
    warnings: list[FindingOut]


class EvaluateResult(BaseModel):
    decisions: list[DecisionOut]
    warnings: list[FindingOut]


class Evidence(BaseModel):
    added_at: str
    investigation: str
    submitted_by: str
    data: Any


class ApprovalOut(BaseModel):
    actor: str
    comment: str | None = None
    at: str


class LedgerEntryOut(BaseModel):
    seq: int
    at: str
    event: str
    actor: str
    action_id: int | None = None
    state_before: str | None = None
    state_after: str | None = None
    comment: str | None = None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class Story(BaseModel):
    """Everything about one action: what ``airgate show`` prints."""

    action: Action
    evidence: list[Evidence]
    approvals: list[ApprovalOut]
    ledger: list[LedgerEntryOut]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Selection(_Strict):
    """Which actions: ``ids``, or every pending one of ``investigation`` (and
    ``action_type``). Several must share an action type, as in Defender."""

    ids: list[ActionId] = Field(default_factory=list, max_length=MAX_IDS)
    investigation: str | None = Field(None, min_length=1, max_length=1000)
    action_type: str | None = Field(None, min_length=1, max_length=200)


class ApproveRequest(Selection):
    comment: str | None = Field(None, max_length=10_000)


class RejectRequest(Selection):
    reason: str = Field(min_length=1, max_length=10_000)


class UndoRequest(_Strict):
    ids: list[ActionId] = Field(min_length=1, max_length=MAX_IDS)
    all_instances: bool = Field(False, description="A quarantined file: every other instance"
                                " of the same hash too.")
    comment: str | None = Field(None, max_length=10_000)


class RedoRequest(_Strict):
    action_type: str = Field(min_length=1, max_length=200,
                             description="The new action type (move_to_inbox...).")
    comment: str | None = Field(None, max_length=10_000)


class Investigation(BaseModel):
    investigation: str
    status: str
    actions: int
    counts: dict[str, int]


class VerifyState(BaseModel):
    action_id: int
    problem: str


class VerifyReport(BaseModel):
    ok: bool
    entries: int
    chain_ok: bool
    first_bad_entry: int | None = None
    chain_message: str
    checkpoints: int
    last_checkpoint_entry: int | None = None
    state: list[VerifyState]
    settings: list[str]


class WhoAmI(BaseModel):
    actor: str
    roles: list[str]


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    code: str | None = None
