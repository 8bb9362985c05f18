"""Changes from the web Action Center: approve, reject, undo, and bulk approve/reject.

Each goes through the library as the signed-in token's actor (``Queue.approve``,
``reject``, ``undo``, ``redo``), so its roles, quorum, separation of duties and
one-type-per-bulk rule are the CLI's. A change done redirects (303) to the page it
came from with a message; a refused one shows that page again with the library's
refusal and its status: 403 no role, 409 a refused transition, 400 bad input.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from airgate.errors import AirgateError, NotFound, UsageError
from airgate.runtime.records import ActionRecord
from airgate.server import webviews as views
from airgate.server.webpage import (
    MAX_ID,
    Visitor,
    app_ctx,
    page,
    posted,
    prefix,
    queue_of,
    redirect,
    status_of,
    to_signin,
)
from airgate.server.webtabs import tab_page

router = APIRouter(include_in_schema=False)


def _back(data: dict[str, Any], prefix: str, action_id: int | None) -> str:
    """Where to return after a change: the tab the form was on, with its filters, and the
    action's panel. Only a tab of this server: never a URL a form could point elsewhere."""
    tab = "history" if data.get("tab") == "history" else "pending"
    query = str(data.get("back", ""))
    params = [(k, v) for k, v in _parse_query(query) if k in views.FILTER_KEYS]
    if action_id is not None:
        params.append(("panel", str(action_id)))
    return f"{prefix}/actions/{tab}" + (f"?{urlencode(params)}" if params else "")


def _parse_query(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=False)[:20]


def _done(request: Request, data: dict[str, Any], action_id: int | None, text: str) -> Response:
    return redirect(request, _back(data, prefix(request), action_id), "ok", text)


def _refused(request: Request, visitor: Visitor, data: dict[str, Any], action_id: int | None,
             exc: AirgateError) -> Response:
    """The page the form was on, again, with the library's refusal and its status."""
    params = dict(_parse_query(str(data.get("back", ""))))
    if action_id is not None:
        params["panel"] = str(action_id)
    tab = "history" if data.get("tab") == "history" else "pending"
    return tab_page(request, tab, visitor, status_of(exc), [("error", exc.message)], params)


def _said(a: ActionRecord, verb: str) -> str:
    subject = f"action {a.id} ({a.action_type} on {a.entity_type} {a.entity_name})"
    if a.status == "pending" and verb == "approved":
        return f"{subject}: approval recorded; waiting for more approvers (still pending)"
    if a.status == "deduplicated":
        return f"{subject}: approved, not carried out again: duplicate of action {a.link_id}"
    if verb == "approved":
        return f"{subject}: approved and carried out: {a.status}" + (
            f": {a.error}" if a.error else "")
    return f"{subject}: {a.status}" + (f": {a.reason}" if a.status == "rejected" else "") + (
        f": {a.error}" if a.error else "")


def _one_id(action_id: int) -> int:
    if not 0 < action_id <= MAX_ID:
        raise NotFound(f"no action {action_id}")
    return action_id


@router.post("/actions/{action_id:int}/{verb}")
async def change(request: Request, action_id: int, verb: str) -> Response:
    visitor, data, refused = await posted(request)
    if refused is not None or visitor is None:
        return refused or to_signin(request)
    if verb not in ("approve", "reject", "undo"):
        return page(request, "error.html", 404, visitor, heading="Not found",
                     message=f"No such change: {verb}.")
    try:
        done = _apply(request, visitor, verb, [_one_id(action_id)], data)
    except AirgateError as exc:
        return _refused(request, visitor, data, action_id, exc)
    return _done(request, data, action_id, " · ".join(done))


@router.post("/actions/bulk")
async def bulk(request: Request) -> Response:
    visitor, data, refused = await posted(request)
    if refused is not None or visitor is None:
        return refused or to_signin(request)
    verb = str(data.get("op", ""))
    try:
        ids = [int(i) for i in data["ids"] if str(i).isdigit() and 0 < int(i) <= MAX_ID]
        if len(ids) != len(data["ids"]) or verb not in ("approve", "reject"):
            raise UsageError("the form sent something it cannot have: reload the page")
        if not ids:
            raise UsageError(f"Select the actions to {verb} first.")
        done = _apply(request, visitor, verb, ids, data)
    except AirgateError as exc:
        return _refused(request, visitor, data, None, exc)
    return _done(request, data, None, " · ".join(done))


def _apply(request: Request, visitor: Visitor, verb: str, ids: list[int],
           data: dict[str, Any]) -> list[str]:
    """One change through the library, as the visitor's actor; its messages."""
    ctx = app_ctx(request)
    queue = queue_of(request)
    comment = str(data.get("comment", "")).strip() or None
    if verb == "approve":
        return [_said(a, "approved") for a in queue.approve(ids, actor=visitor.actor,
                                                             comment=comment)]
    if verb == "reject":
        reason = str(data.get("reason", "")).strip()
        if not reason:
            raise UsageError("Rejecting needs a reason: write it in the reason field.")
        return [_said(a, "rejected") for a in queue.reject(ids, actor=visitor.actor,
                                                           reason=reason)]
    old = queue.get(ids[0])
    target = views.undo_target(queue.catalog, old)
    if target is not None and old.status == "completed":
        # Email actions have no undo of their own: the opposite move, as in Defender.
        new = queue.redo(old.id, action_type=target, actor=visitor.actor, comment=comment,
                         engine=ctx.engine)
        return [f"action {old.id} ({old.action_type} on {old.entity_type} {old.entity_name})"
                f" undone by a new action {new.id} ({new.action_type}): pending approval;"
                f" action {old.id} is now superseded"]
    return [_said(a, "undone") for a in queue.undo(ids, actor=visitor.actor, comment=comment)]

