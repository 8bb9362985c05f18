"""The JSON API under ``/api/v1``: the queue commands of the CLI over HTTP.

Each endpoint calls the library as the matching command does, acting as the actor
of the request's token; the library decides who may do what (roles, separation of
duties, quorum) and writes every refusal to the ledger, as for the CLI. Evidence
submission and evaluation are in ``api_evidence.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from airgate.errors import TransitionError, UsageError
from airgate.runtime.records import OPEN, SETTLED, STATUSES, ActionFilter, ActionRecord
from airgate.server import api_evidence, cursors, models
from airgate.server.auth import Actor, Context
from airgate.server.context import AppContext

router = APIRouter()
router.include_router(api_evidence.router)

PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": models.Problem, "description": what}
    for status, what in ((400, "Bad input"), (401, "No or a bad token"),
                         (403, "The actor lacks a role"), (404, "No such action"),
                         (409, "The transition is refused"), (422, "Not the API's schema"))}
MAX_PAGE = 1000
DEFAULT_PAGE = 200
Status = Literal[STATUSES]  # type: ignore[valid-type]
Text = Annotated[str | None, Query(min_length=1, max_length=1000)]
IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _since(ctx: AppContext, text: str | None) -> str | None:
    from airgate.policy.durations import parse_duration
    from airgate.runtime.clock import EARLIEST, format_time, parse_time

    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError:
        return format_time(parse_time(text))  # UsageError when it is not a time either

    now = ctx.now()
    if seconds > (now - EARLIEST).total_seconds():
        raise UsageError(f"since={text} reaches back before {EARLIEST:%Y-%m-%d}")
    return format_time(now - dt.timedelta(seconds=seconds))


def _page(ctx: AppContext, flt: ActionFilter, limit: int) -> tuple[list[ActionRecord], str | None]:
    from dataclasses import replace

    rows = ctx.queue().list_actions(replace(flt, limit=limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, cursors.encode(rows[-1], by_update=flt.by_update) if more and rows else None


def _actions(rows: list[ActionRecord]) -> list[models.Action]:
    return [models.Action.model_validate(a.as_dict()) for a in rows]


@router.get("/whoami", tags=["server"], summary="The actor of this token and its roles",
            responses=PROBLEMS)
def whoami(actor: Actor, ctx: Context) -> models.WhoAmI:
    return models.WhoAmI(actor=actor, roles=list(ctx.queue().config.roles_of(actor)))


@router.get("/actions", tags=["actions"], responses=PROBLEMS,
            summary="Open actions (pending, approved, running) or those of status=, oldest"
                    " first: the Action center's Pending tab")
def list_actions(
    _actor: Actor, ctx: Context,
    status: Annotated[list[Status] | None, Query()] = None,
    investigation: Text = None, action_type: Text = None, source: Text = None,
    since: Annotated[str | None, Query(max_length=100, description="ISO 8601 time, or a"
                                       " duration back from now (24h, 7d)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> models.ActionPage:
    flt = ActionFilter(tuple(status or OPEN), investigation, action_type, source,
                       _since(ctx, since), after=cursors.decode(cursor))
    rows, next_cursor = _page(ctx, flt, limit)
    return models.ActionPage(items=_actions(rows), next_cursor=next_cursor)


@router.get("/actions/{action_id}", tags=["actions"], responses=PROBLEMS,
            summary="The whole story of one action: evidence, decision, approvals, ledger")
def show_action(action_id: IdPath, _actor: Actor, ctx: Context) -> models.Story:
    return models.Story.model_validate(ctx.queue().show(action_id))


def _chosen(ctx: AppContext, sel: models.Selection, verb: str) -> list[int]:
    """The ids named, or the pending actions of an investigation (as the CLI's)."""
    if sel.ids and (sel.investigation or sel.action_type):
        raise UsageError(f"{verb} either ids or investigation, not both")
    if sel.ids:
        return list(sel.ids)
    if not sel.investigation:
        raise UsageError(f"name the actions to {verb}: ids, or investigation [and"
                         " action_type]")
    found = ctx.queue().list_actions(ActionFilter(("pending",), sel.investigation,
                                                  sel.action_type))
    if not found:
        raise TransitionError(f"no pending action in investigation {sel.investigation}"
                              + (f" of type {sel.action_type}" if sel.action_type else ""))
    return [a.id for a in found]


def _settled(ctx: AppContext, operation: str, done: list[ActionRecord]) -> list[models.Action]:
    if ctx.metrics is not None:
        ctx.metrics.settled(operation, done)
    return _actions(done)


@router.post("/actions/approve", tags=["actions"], responses=PROBLEMS,
             summary="Approve pending actions (one action type); the quorum's last approval"
                     " runs them")
def approve(body: models.ApproveRequest, actor: Actor, ctx: Context) -> list[models.Action]:
    queue = ctx.queue()
    queue.maintain()
    done = queue.approve(_chosen(ctx, body, "approve"), actor=actor, comment=body.comment)
    return _settled(ctx, "approve", done)


@router.post("/actions/reject", tags=["actions"], responses=PROBLEMS,
             summary="Reject pending actions (one action type) with a reason")
def reject(body: models.RejectRequest, actor: Actor, ctx: Context) -> list[models.Action]:
    queue = ctx.queue()
    queue.maintain()
    done = queue.reject(_chosen(ctx, body, "reject"), actor=actor, reason=body.reason)
    return _settled(ctx, "reject", done)


@router.post("/actions/undo", tags=["actions"], responses=PROBLEMS,
             summary="Undo completed actions (one action type) through their executor")
def undo(body: models.UndoRequest, actor: Actor, ctx: Context) -> list[models.Action]:
    queue = ctx.queue()
    queue.maintain()
    done = queue.undo(body.ids, actor=actor, comment=body.comment,
                      all_instances=body.all_instances)
    return _settled(ctx, "undo", done)


@router.post("/actions/{action_id}/redo", tags=["actions"], responses=PROBLEMS,
             summary="Change an action's type: a new pending action; the old one is"
                     " superseded")
def redo(action_id: IdPath, body: models.RedoRequest, actor: Actor,
         ctx: Context) -> models.Action:
    queue = ctx.queue()
    queue.maintain()
    created = queue.redo(action_id, action_type=body.action_type, actor=actor,
                         comment=body.comment, catalog=ctx.policy_set.catalog, engine=ctx.engine)
    return _settled(ctx, "redo", [created])[0]


@router.get("/history", tags=["actions"], responses={
    **PROBLEMS, 200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                      "description": "A page of settled actions (JSON or CSV)"}},
            summary="Settled actions, most recently changed first: the History tab and its"
                    " CSV export", response_model=models.HistoryPage)
def history(
    _actor: Actor, ctx: Context,
    status: Annotated[list[Status] | None, Query()] = None,
    investigation: Text = None, action_type: Text = None, source: Text = None,
    decided_by: Text = None,
    since: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE * 10)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    from airgate.runtime.clock import format_time
    from airgate.runtime.config import normalize_actor
    from airgate.runtime.export import history_csv

    flt = ActionFilter(tuple(status or SETTLED), investigation, action_type, source,
                       _since(ctx, since),
                       None if decided_by is None else normalize_actor(decided_by),
                       newest_first=True, by_update=True, after=cursors.decode(cursor))
    rows, next_cursor = _page(ctx, flt, limit)
    undone = {i: who for i, (who, _) in ctx.queue().undone_by(
        [a.id for a in rows if a.status == "undone"]).items()}
    if format == "csv":
        headers = {"Content-Disposition": 'attachment; filename="airgate-history.csv"'}
        if next_cursor:
            headers["X-Next-Cursor"] = next_cursor
        return Response(history_csv(rows, undone, format_time(ctx.now())),
                        media_type="text/csv; charset=utf-8", headers=headers)
    return models.HistoryPage(items=[models.HistoryAction.model_validate(
        {**a.as_dict(), "undone_by": undone.get(a.id)}) for a in rows], next_cursor=next_cursor)


@router.get("/investigations", tags=["investigations"], responses=PROBLEMS,
            summary="Each investigation with its status derived from its actions")
def investigations(_actor: Actor, ctx: Context) -> list[models.Investigation]:
    return [models.Investigation.model_validate(r) for r in ctx.queue().investigations()]


@router.get("/ledger/verify", tags=["ledger"], responses=PROBLEMS,
            summary="Check the hash chain and the tables against the ledger")
def ledger_verify(_actor: Actor, ctx: Context) -> models.VerifyReport:
    from airgate.runtime.checkpoint import verify_store

    return models.VerifyReport.model_validate(verify_store(ctx.store).as_dict())
