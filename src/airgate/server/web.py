"""The web Action Center: Pending and History tabs, the action panel, investigations.

Server-rendered HTML (Jinja2, autoescaped; evidence text is never marked safe) over
the same library calls as the CLI and the JSON API: ``Queue.approve``, ``reject``,
``undo`` and ``redo`` act as the signed-in token's actor, so roles, quorum,
separation of duties, bulk same-type and the ledger are exactly theirs, and their
refusals are shown as they are (403 for a missing role, 409 for a refused
transition, 400 for bad input).

Sign-in takes an API token once and keeps a signed session (``session.py``); every
form carries a CSRF token; every HTML response carries a Content-Security-Policy
without inline script (the one script is ``static/app.js``). Pages work without it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from airgate.errors import NotFound, Unauthenticated, UsageError
from airgate.server import webchanges
from airgate.server import webviews as views
from airgate.server.session import COOKIE, PRE_COOKIE
from airgate.server.webpage import (
    HERE,
    MAX_ID,
    SECURITY_HEADERS,
    STATIC,
    app_ctx,
    page,
    posted,
    prefix,
    queue_of,
    secure,
    signed_in,
    to_signin,
    web_state,
)
from airgate.server.webtabs import action_panel, tab_page

INVESTIGATION_ROWS = 500  # actions on one investigation page

router = APIRouter(include_in_schema=False)
router.include_router(webchanges.router)


# ---------------------------------------------------------------- sign-in
@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    return RedirectResponse(f"{prefix(request)}/actions/pending", status_code=303)


def _signin_page(request: Request, status: int = 200,
                 flashes: list[tuple[str, str]] | None = None,
                 headers: dict[str, str] | None = None) -> Response:
    cookie, csrf = web_state(request).sessions.pre_session()
    response = page(request, "signin.html", status, flashes=flashes, csrf=csrf)
    response.set_cookie(PRE_COOKIE, cookie, httponly=True, samesite="strict",
                        secure=secure(request), path="/", max_age=600)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request) -> Response:
    return _signin_page(request)


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request) -> Response:
    from airgate.runtime import tokens

    web = web_state(request)
    client = request.client.host if request.client else "unknown"
    wait = web.limiter.retry_after(client)
    if wait is not None:
        return _signin_page(request, 429, [("error", f"Too many failed sign-ins from this"
                                            f" address: try again in {wait} seconds.")],
                            {"Retry-After": str(wait)})
    form = await request.form()
    if not web.sessions.check_pre_session(request.cookies.get(PRE_COOKIE),
                                          str(form.get("csrf", ""))):
        return _signin_page(request, 403, [("error", "The sign-in form expired or came from"
                                            " another site: sign in again.")])
    raw = str(form.get("token", "")).strip()
    ctx = app_ctx(request)
    try:
        tokens.verify(ctx.store, raw, now=ctx.now())
        with ctx.store.read() as tx:
            row = tx.token_by_hash(tokens.digest(raw))
        if row is None:  # revoked and deleted between the two reads
            raise Unauthenticated("unknown token")
    except Unauthenticated as exc:
        web.limiter.failed(client)
        return _signin_page(request, 401, [("error", f"Sign-in refused: {exc.message}.")])
    web.limiter.succeeded(client)
    response = RedirectResponse(f"{prefix(request)}/actions/pending", status_code=303)
    response.set_cookie(COOKIE, web.sessions.issue(str(row.id)), httponly=True,
                        samesite="strict", secure=secure(request), path="/",
                        max_age=web.sessions.lifetime)
    response.delete_cookie(PRE_COOKIE, path="/")
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    _visitor_, _data, refused = await posted(request)
    if refused is not None:
        return refused
    response = RedirectResponse(f"{prefix(request)}/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/actions/pending", response_class=HTMLResponse)
def pending_tab(request: Request) -> Response:
    visitor = signed_in(request)
    return to_signin(request) if visitor is None else tab_page(request, "pending", visitor)


@router.get("/actions/history", response_class=HTMLResponse)
def history_tab(request: Request) -> Response:
    visitor = signed_in(request)
    return to_signin(request) if visitor is None else tab_page(request, "history", visitor)


def _csv(request: Request, tab: str) -> Response:
    from airgate.runtime.clock import format_time

    if signed_in(request) is None:
        return to_signin(request)
    ctx = app_ctx(request)
    queue = queue_of(request)
    try:
        filters = views.read_filters(tab, dict(request.query_params), ctx.now())
    except UsageError as exc:
        return Response(exc.message, status_code=400, media_type="text/plain",
                        headers=SECURITY_HEADERS)
    shown = queue.list_actions(filters.flt)[:filters.limit]
    undone = {i: who for i, (who, _) in queue.undone_by(
        [a.id for a in shown if a.status == "undone"]).items()}
    body = views.to_csv(tab, shown, undone, format_time(ctx.now()))
    return Response(body, media_type="text/csv; charset=utf-8", headers={
        **SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="airgate-{tab}.csv"'})


@router.get("/actions/pending.csv")
def pending_csv(request: Request) -> Response:
    return _csv(request, "pending")


@router.get("/actions/history.csv")
def history_csv(request: Request) -> Response:
    return _csv(request, "history")


@router.get("/web/counts")
def live_counts(request: Request) -> Response:
    """Pending actions by type, for ``app.js`` to refresh the counts every few seconds."""
    if signed_in(request) is None:
        return JSONResponse({"detail": "not signed in"}, status_code=401)
    queue = queue_of(request)
    counts = views.live_counts(queue.pending_counts(views.COUNT_CAP), queue.catalog)
    return JSONResponse(counts, headers={"Cache-Control": "no-store",
                                         "X-Content-Type-Options": "nosniff"})


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response((HERE / "static" / name).read_bytes(), media_type=STATIC[name],
                    headers={"X-Content-Type-Options": "nosniff",
                             "Cache-Control": "no-cache"})


# ---------------------------------------------------------------- one action, an investigation
@router.get("/actions/{action_id:int}", response_class=HTMLResponse)
def action_page(request: Request, action_id: int) -> Response:
    visitor = signed_in(request)
    if visitor is None:
        return to_signin(request)
    if not 0 < action_id <= MAX_ID:
        return page(request, "error.html", 404, visitor, heading="Not found",
                     message=f"No action {action_id}.")
    try:
        panel = action_panel(request, visitor, action_id)
    except NotFound as exc:
        return page(request, "error.html", 404, visitor, heading="Not found",
                     message=exc.message)
    return page(request, "action.html", 200, visitor, panel=panel, query="")


@router.get("/investigations/{investigation:path}", response_class=HTMLResponse)
def investigation_page(request: Request, investigation: str) -> Response:
    from airgate.runtime.clock import format_time
    from airgate.runtime.investigations import derive
    from airgate.runtime.records import ActionFilter

    visitor = signed_in(request)
    if visitor is None:
        return to_signin(request)
    ctx = app_ctx(request)
    queue = queue_of(request)
    actions = queue.list_actions(ActionFilter(investigation=investigation,
                                              limit=INVESTIGATION_ROWS))
    if not actions:
        # Telling an unknown investigation from one without threats would mean counting
        # every investigation's actions (Queue.investigations): not for one page.
        return page(request, "error.html", 404, visitor, heading="Not found",
                    message=f"No action belongs to investigation {investigation}: it is"
                            " unknown, or its evidence needed no action (airgate"
                            " investigations lists them all).")
    counts: dict[str, int] = {}
    for a in actions:
        counts[a.status] = counts.get(a.status, 0) + 1
    panels = []
    for a in actions:
        p = action_panel(request, visitor, a.id)
        p["evidence"] = [e for e in p["evidence"] if e["investigation"] == investigation]
        panels.append(p)
    status = derive(counts)
    return page(request, "investigation.html", 200, visitor, inv={
        "id": investigation, "status": status, "status_class": status.replace(" ", "-"),
        "actions": views.rows(actions, queue.catalog, format_time(ctx.now()), {}),
        "panels": panels})


