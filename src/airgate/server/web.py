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

import base64
import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, Undefined

from airgate.errors import AirgateError, NotFound, Unauthenticated, UsageError
from airgate.render import escape
from airgate.runtime.records import SETTLED, ActionRecord
from airgate.server import webviews as views
from airgate.server.session import COOKIE, PRE_COOKIE, Session, Sessions, SignInLimiter

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none';"
       " frame-ancestors 'none'; form-action 'self'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
                    "Cache-Control": "no-store"}
FLASH = "airgate_flash"
STATIC = {"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}
MAX_ID = 2**31 - 1

router = APIRouter(include_in_schema=False)


def _show(value: object) -> str:
    """Text for a page: control and bidirectional characters made visible (as the CLI
    does); autoescaping then makes it inert HTML."""
    if value is None or isinstance(value, Undefined):
        return ""
    return escape(value)


TEMPLATES = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
TEMPLATES.filters["show"] = _show
TEMPLATES.filters["urlencode"] = lambda v: quote(str(v), safe="")


class WebState:
    """Per-application state: the session key and the sign-in limiter."""

    def __init__(self) -> None:
        self.sessions = Sessions()
        self.limiter = SignInLimiter()


_state_lock = threading.Lock()


def _web(request: Request) -> WebState:
    with _state_lock:
        state = getattr(request.app.state, "airgate_web", None)
        if state is None:
            state = request.app.state.airgate_web = WebState()
    assert isinstance(state, WebState)
    return state


def _ctx(request: Request) -> Any:
    return request.app.state.airgate  # server.context.AppContext


# ---------------------------------------------------------------- who is signed in
class Visitor:
    """A signed-in browser: its session, the token's actor, and its CSRF token."""

    def __init__(self, session: Session, actor: str, csrf: str) -> None:
        self.session, self.actor, self.csrf = session, actor, csrf


def _visitor(request: Request) -> Visitor | None:
    """The session of the request, if it is valid and its token still works (a revoked or
    expired token ends the session at once)."""
    from airgate.runtime.clock import format_time

    web = _web(request)
    session = web.sessions.read(request.cookies.get(COOKIE))
    if session is None or not session.token_id.isdigit():
        return None
    ctx = _ctx(request)
    with ctx.store.read() as tx:
        row = tx.token_by_id(int(session.token_id))
    now = format_time(ctx.now())
    if row is None or row.revoked_at is not None or (
            row.expires_at is not None and row.expires_at <= now):
        return None
    return Visitor(session, row.actor, web.sessions.csrf(session))


def _to_signin(request: Request) -> Response:
    response = RedirectResponse(f"{_prefix(request)}/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _prefix(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


# ---------------------------------------------------------------- responses
def _html(request: Request, template: str, status: int = 200,
          visitor: Visitor | None = None, flashes: list[tuple[str, str]] | None = None,
          **values: Any) -> HTMLResponse:
    queue = _ctx(request).queue() if visitor is not None else None
    shown = list(flashes or [])
    stored = _read_flash(request)
    if stored:
        shown.insert(0, stored)
    body = TEMPLATES.get_template(template).render(
        prefix=_prefix(request), actor=visitor.actor if visitor else None,
        roles=queue.config.roles_of(visitor.actor) if queue and visitor else (),
        csrf=visitor.csrf if visitor else values.pop("csrf", ""), flashes=shown, **values)
    response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
    if stored:
        response.delete_cookie(FLASH, path="/")
    return response


def _flash_value(request: Request, kind: str, text: str) -> str:
    body = base64.urlsafe_b64encode(json.dumps([kind, text[:2000]]).encode()).decode()
    return f"{body}.{_web(request).sessions.seal('flash', body)}"


def _read_flash(request: Request) -> tuple[str, str] | None:
    value = request.cookies.get(FLASH, "")
    if value.count(".") != 1:
        return None
    body, mac = value.split(".")
    if not _web(request).sessions.unseal("flash", body, mac):
        return None
    try:
        kind, text = json.loads(base64.urlsafe_b64decode(body))
    except ValueError:
        return None
    return ("error" if kind == "error" else "ok"), str(text)


def _redirect(request: Request, where: str, kind: str, text: str) -> Response:
    response = RedirectResponse(where, status_code=303)
    response.set_cookie(FLASH, _flash_value(request, kind, text), httponly=True,
                        samesite="strict", secure=_secure(request), path="/")
    return response


def _status_of(exc: AirgateError) -> int:
    from airgate.server.problems import status_of

    return status_of(exc)[0]


# ---------------------------------------------------------------- sign-in
@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    return RedirectResponse(f"{_prefix(request)}/actions/pending", status_code=303)


def _signin_page(request: Request, status: int = 200,
                 flashes: list[tuple[str, str]] | None = None,
                 headers: dict[str, str] | None = None) -> Response:
    cookie, csrf = _web(request).sessions.pre_session()
    response = _html(request, "signin.html", status, flashes=flashes, csrf=csrf)
    response.set_cookie(PRE_COOKIE, cookie, httponly=True, samesite="strict",
                        secure=_secure(request), path="/", max_age=600)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request) -> Response:
    return _signin_page(request)


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request) -> Response:
    from airgate.runtime import tokens

    web = _web(request)
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
    ctx = _ctx(request)
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
    response = RedirectResponse(f"{_prefix(request)}/actions/pending", status_code=303)
    response.set_cookie(COOKIE, web.sessions.issue(str(row.id)), httponly=True,
                        samesite="strict", secure=_secure(request), path="/",
                        max_age=web.sessions.lifetime)
    response.delete_cookie(PRE_COOKIE, path="/")
    return response


async def _posted(request: Request) -> tuple[Visitor | None, dict[str, Any], Response | None]:
    """The visitor and form of a POST, or the response refusing it (no session: to the
    sign-in page; a missing or wrong CSRF token, or a foreign Origin: 403)."""
    visitor = _visitor(request)
    if visitor is None:
        return None, {}, _to_signin(request)
    origin = request.headers.get("origin")
    form = await request.form()
    data = {"ids": form.getlist("ids"), **{k: str(v) for k, v in form.items() if k != "ids"}}
    own = f"{request.url.scheme}://{request.url.netloc}"
    if (origin is not None and origin != own) or not _web(request).sessions.check_csrf(
            visitor.session, str(data.get("csrf", ""))):
        return visitor, data, _html(request, "error.html", 403, visitor,
                                    heading="Form refused",
                                    message="This form expired or came from another site"
                                            " (its CSRF token does not match your session):"
                                            " reload the page and try again.")
    return visitor, data, None


@router.post("/signout")
async def signout(request: Request) -> Response:
    _visitor_, _data, refused = await _posted(request)
    if refused is not None:
        return refused
    response = RedirectResponse(f"{_prefix(request)}/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# ---------------------------------------------------------------- the tabs
def _tab(request: Request, tab: str, visitor: Visitor, status: int = 200,
         flashes: list[tuple[str, str]] | None = None,
         params: dict[str, str] | None = None) -> Response:
    from airgate.runtime.clock import format_time

    ctx = _ctx(request)
    queue = ctx.queue()
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
            panel = _panel(request, visitor, int(wanted))
        except NotFound:
            flashes = [*(flashes or []), ("error", f"No action {wanted}.")]
    counts = queue.pending_counts()
    return _html(
        request, "actions.html", status, visitor, flashes, tab=tab, rows=table, more=more,
        more_query=filters.query(limit=min(filters.limit * 2, views.MAX_ROWS)),
        query=filters.query(), f=filters.raw, panel=panel, statuses=SETTLED,
        sources=views.SOURCES, total_pending=sum(counts.values()),
        counts=[{"type": t, "name": views.action_name(queue.catalog, t), "n": n}
                for t, n in counts.items()],
        action_types=[{"id": s.id, "name": s.display_name} for s in queue.catalog])


def _panel(request: Request, visitor: Visitor, action_id: int) -> dict[str, Any]:
    from airgate.runtime.clock import format_time
    from airgate.runtime.guards import role_problem

    ctx = _ctx(request)
    queue = ctx.queue()
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


@router.get("/actions/pending", response_class=HTMLResponse)
def pending_tab(request: Request) -> Response:
    visitor = _visitor(request)
    return _to_signin(request) if visitor is None else _tab(request, "pending", visitor)


@router.get("/actions/history", response_class=HTMLResponse)
def history_tab(request: Request) -> Response:
    visitor = _visitor(request)
    return _to_signin(request) if visitor is None else _tab(request, "history", visitor)


def _csv(request: Request, tab: str) -> Response:
    from airgate.runtime.clock import format_time

    if _visitor(request) is None:
        return _to_signin(request)
    ctx = _ctx(request)
    queue = ctx.queue()
    try:
        filters = views.read_filters(tab, dict(request.query_params), ctx.now())
    except UsageError as exc:
        return Response(exc.message, status_code=400, media_type="text/plain",
                        headers=SECURITY_HEADERS)
    shown = queue.list_actions(filters.flt)[:filters.limit]
    undone = {i: who for i, (who, _) in queue.undone_by(
        [a.id for a in shown if a.status == "undone"]).items()}
    body = views.to_csv(views.rows(shown, queue.catalog, format_time(ctx.now()), undone))
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
    if _visitor(request) is None:
        return JSONResponse({"detail": "not signed in"}, status_code=401)
    queue = _ctx(request).queue()
    counts = queue.pending_counts()
    return JSONResponse({"total": sum(counts.values()), "by_type": [
        {"type": t, "name": views.action_name(queue.catalog, t), "n": n}
        for t, n in counts.items()]}, headers={"Cache-Control": "no-store"})


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
    visitor = _visitor(request)
    if visitor is None:
        return _to_signin(request)
    if not 0 < action_id <= MAX_ID:
        return _html(request, "error.html", 404, visitor, heading="Not found",
                     message=f"No action {action_id}.")
    try:
        panel = _panel(request, visitor, action_id)
    except NotFound as exc:
        return _html(request, "error.html", 404, visitor, heading="Not found",
                     message=exc.message)
    return _html(request, "action.html", 200, visitor, panel=panel, query="")


@router.get("/investigations/{investigation:path}", response_class=HTMLResponse)
def investigation_page(request: Request, investigation: str) -> Response:
    from airgate.runtime.investigations import derive
    from airgate.runtime.records import ActionFilter

    visitor = _visitor(request)
    if visitor is None:
        return _to_signin(request)
    from airgate.runtime.clock import format_time

    ctx = _ctx(request)
    queue = ctx.queue()
    actions = queue.list_actions(ActionFilter(investigation=investigation, limit=500))
    if not actions and investigation not in {i["investigation"] for i in queue.investigations()}:
        return _html(request, "error.html", 404, visitor, heading="Not found",
                     message=f"No investigation {investigation}.")
    counts: dict[str, int] = {}
    for a in actions:
        counts[a.status] = counts.get(a.status, 0) + 1
    panels = []
    for a in actions:
        p = _panel(request, visitor, a.id)
        p["evidence"] = [e for e in p["evidence"] if e["investigation"] == investigation]
        panels.append(p)
    status = derive(counts)
    return _html(request, "investigation.html", 200, visitor, inv={
        "id": investigation, "status": status, "status_class": status.replace(" ", "-"),
        "actions": views.rows(actions, queue.catalog, format_time(ctx.now()), {}),
        "panels": panels})


# ---------------------------------------------------------------- changes
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
    return _redirect(request, _back(data, _prefix(request), action_id), "ok", text)


def _refused(request: Request, visitor: Visitor, data: dict[str, Any], action_id: int | None,
             exc: AirgateError) -> Response:
    """The page the form was on, again, with the library's refusal and its status."""
    params = dict(_parse_query(str(data.get("back", ""))))
    if action_id is not None:
        params["panel"] = str(action_id)
    tab = "history" if data.get("tab") == "history" else "pending"
    return _tab(request, tab, visitor, _status_of(exc), [("error", exc.message)], params)


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
    visitor, data, refused = await _posted(request)
    if refused is not None or visitor is None:
        return refused or _to_signin(request)
    if verb not in ("approve", "reject", "undo"):
        return _html(request, "error.html", 404, visitor, heading="Not found",
                     message=f"No such change: {verb}.")
    try:
        done = _apply(request, visitor, verb, [_one_id(action_id)], data)
    except AirgateError as exc:
        return _refused(request, visitor, data, action_id, exc)
    return _done(request, data, action_id, " · ".join(done))


@router.post("/actions/bulk")
async def bulk(request: Request) -> Response:
    visitor, data, refused = await _posted(request)
    if refused is not None or visitor is None:
        return refused or _to_signin(request)
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
    ctx = _ctx(request)
    queue = ctx.queue()
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
