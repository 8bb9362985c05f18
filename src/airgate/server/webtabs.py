"""The Pending and History tabs and the action panel, rendered for a signed-in visitor
(GET pages, and the pages that show a refused change again)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from airgate.errors import NotFound, UsageError
from airgate.runtime.records import SETTLED
from airgate.server import webviews as views
from airgate.server.webpage import MAX_ID, Visitor, app_ctx, page, queue_of


# ---------------------------------------------------------------- the tabs
def tab_page(request: Request, tab: str, visitor: Visitor, status: int = 200,
             flashes: list[tuple[str, str]] | None = None,
             params: dict[str, str] | None = None) -> Response:
    """The Pending or History tab with ``params``' filters (the request's query string
    unless given), and the panel of ``panel=ID`` beside it."""
    from airgate.runtime.clock import format_time

    ctx = app_ctx(request)
    queue = queue_of(request)
    params = dict(request.query_params) if params is None else params
    try:
        filters = views.read_filters(tab, params, ctx.now())
    except UsageError as exc:
        filters = views.read_filters(tab, {}, ctx.now())
        flashes = [*(flashes or []), ("error", f"Filter ignored: {exc.message}")]
        status = 400
    found = queue.list_actions(filters.flt)
    shown, more = found[:filters.limit], len(found) > filters.limit
    undone = {} if tab == "pending" else {
        i: who for i, (who, _) in queue.undone_by(
            [a.id for a in shown if a.status == "undone"]).items()}
    now = format_time(ctx.now())
    table = views.rows(shown, queue.catalog, now, undone)
    panel = None
    wanted = params.get("panel", "")
    if wanted.isdigit() and 0 < int(wanted) <= MAX_ID:
        try:
            panel = action_panel(request, visitor, int(wanted))
        except NotFound:
            flashes = [*(flashes or []), ("error", f"No action {wanted}.")]
    counts = views.live_counts(queue.pending_counts(views.COUNT_CAP), queue.catalog)
    return page(
        request, "actions.html", status, visitor, flashes, tab=tab, rows=table, more=more,
        more_query=filters.query(limit=min(filters.limit * 2, views.MAX_ROWS)),
        query=filters.query(), f=filters.raw, panel=panel, statuses=SETTLED,
        sources=views.SOURCES, counts=counts,
        action_types=[{"id": s.id, "name": s.display_name} for s in queue.catalog])


def action_panel(request: Request, visitor: Visitor, action_id: int) -> dict[str, Any]:
    """The action panel of one action, as ``visitor`` sees it (NotFound for an unknown id)."""
    from airgate.runtime.clock import format_time
    from airgate.runtime.guards import role_problem

    ctx = app_ctx(request)
    queue = queue_of(request)
    story = queue.show(action_id)
    action = story["action"]
    problem = None
    if action["status"] == "pending":
        problem = role_problem(queue, visitor.actor, action["approval"].get("roles", ()),
                               f"approving {action['action_type']}")
        if problem:
            problem = f"You cannot approve or reject this action: {problem}."
    lines, note = _explain(ctx, action, story["evidence"])
    return views.panel(story, queue.catalog, format_time(ctx.now()), role_problem=problem,
                       explanation=lines, explain_note=note)


def _explain(ctx: Any, action: dict[str, Any],
             evidence: list[dict[str, Any]]) -> tuple[list[str] | None, str | None]:
    """``evaluate --explain``'s lines for the action's rules on its first evidence item,
    under the policy the server runs now."""
    from airgate.engine.explain import explanation_text, trace_rule
    from airgate.model import Evidence

    by_id = {r.id: r for r in ctx.engine.compiled.policy_set.rules}
    data = next((e["data"] for e in evidence if isinstance(e["data"], dict)
                 and "verdict" in e["data"]), None)
    if data is None:
        return None, "No stored evidence item to explain the decision with."
    try:
        ev = Evidence(**{**data, "fields": data.get("fields") or {}})
    except TypeError:
        return None, "The stored evidence cannot be re-read by this version of airgate."
    traces = [trace_rule(by_id[r], ev).as_dict() for r in action["rules"] if r in by_id]
    gone = [r for r in action["rules"] if r not in by_id]
    note = (f"Not in the policy the server runs now: {', '.join(gone)}." if gone else None)
    return explanation_text({"rules": traces, "exclusions": []}) or None, note


