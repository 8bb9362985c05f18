"""The plumbing of the web Action Center's pages: templates, security headers, who is
signed in, flash messages, and the checks every form post passes (session, CSRF, Origin).

Jinja2 autoescapes every value; the ``show`` filter first makes control and
bidirectional characters visible, as the CLI does. Nothing from evidence is ever
marked safe.
"""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, Undefined

from airgate.errors import AirgateError
from airgate.render import escape
from airgate.server.session import COOKIE, Session, Sessions, SignInLimiter

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none';"
       " frame-ancestors 'none'; form-action 'self'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
                    "Cache-Control": "no-store"}
FLASH = "airgate_flash"
STATIC = {"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}
MAX_ID = 2**31 - 1


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


def web_state(request: Request) -> WebState:
    """The session keys and sign-in limiter of this application (made on first use)."""
    with _state_lock:
        state = getattr(request.app.state, "airgate_web", None)
        if state is None:
            state = request.app.state.airgate_web = WebState()
    assert isinstance(state, WebState)
    return state


def app_ctx(request: Request) -> Any:
    """The server's ``AppContext``: store, policy, engine, clock."""
    return request.app.state.airgate  # server.context.AppContext


def queue_of(request: Request) -> Any:
    """The request's queue, made once per request (each one reads the governing config)."""
    queue = getattr(request.state, "airgate_web_queue", None)
    if queue is None:
        queue = request.state.airgate_web_queue = app_ctx(request).queue()
    return queue


# ---------------------------------------------------------------- who is signed in
class Visitor:
    """A signed-in browser: its session, the token's actor, and its CSRF token."""

    def __init__(self, session: Session, actor: str, csrf: str) -> None:
        self.session, self.actor, self.csrf = session, actor, csrf


def signed_in(request: Request) -> Visitor | None:
    """The session of the request, if it is valid and its token still works (a revoked or
    expired token ends the session at once)."""
    from airgate.runtime.clock import format_time

    web = web_state(request)
    session = web.sessions.read(request.cookies.get(COOKIE))
    if session is None or not session.token_id.isdigit():
        return None
    ctx = app_ctx(request)
    with ctx.store.read() as tx:
        row = tx.token_by_id(int(session.token_id))
    now = format_time(ctx.now())
    if row is None or row.revoked_at is not None or (
            row.expires_at is not None and row.expires_at <= now):
        return None
    return Visitor(session, row.actor, web.sessions.csrf(session))


def to_signin(request: Request) -> Response:
    """To the sign-in page, forgetting a session cookie that no longer works."""
    response = RedirectResponse(f"{prefix(request)}/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def prefix(request: Request) -> str:
    """The path the app is mounted under (links and redirects start with it)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def secure(request: Request) -> bool:
    """Whether the browser reached us over https (then cookies are Secure)."""
    return request.url.scheme == "https"


# ---------------------------------------------------------------- responses
def page(request: Request, template: str, status: int = 200,
          visitor: Visitor | None = None, flashes: list[tuple[str, str]] | None = None,
          **values: Any) -> HTMLResponse:
    """Render ``template`` with the security headers; a flash left by a redirect shows
    first, then ``flashes``."""
    queue = queue_of(request) if visitor is not None else None
    shown = list(flashes or [])
    stored = _read_flash(request)
    if stored:
        shown.insert(0, stored)
    body = TEMPLATES.get_template(template).render(
        prefix=prefix(request), actor=visitor.actor if visitor else None,
        roles=queue.config.roles_of(visitor.actor) if queue and visitor else (),
        csrf=visitor.csrf if visitor else values.pop("csrf", ""), flashes=shown, **values)
    response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
    if stored:
        response.delete_cookie(FLASH, path="/")
    return response


def _flash_value(request: Request, kind: str, text: str) -> str:
    body = base64.urlsafe_b64encode(json.dumps([kind, text[:2000]]).encode()).decode()
    return f"{body}.{web_state(request).sessions.seal('flash', body)}"


def _read_flash(request: Request) -> tuple[str, str] | None:
    value = request.cookies.get(FLASH, "")
    if value.count(".") != 1:
        return None
    body, mac = value.split(".")
    if not web_state(request).sessions.unseal("flash", body, mac):
        return None
    try:
        kind, text = json.loads(base64.urlsafe_b64decode(body))
    except ValueError:
        return None
    return ("error" if kind == "error" else "ok"), str(text)


def redirect(request: Request, where: str, kind: str, text: str) -> Response:
    """A 303 to ``where`` that shows ``text`` there once (a signed flash cookie)."""
    response = RedirectResponse(where, status_code=303)
    response.set_cookie(FLASH, _flash_value(request, kind, text), httponly=True,
                        samesite="strict", secure=secure(request), path="/")
    return response


def status_of(exc: AirgateError) -> int:
    """The HTTP status of a library error, as the JSON API gives it."""
    from airgate.server.problems import status_of

    return status_of(exc)[0]



async def posted(request: Request) -> tuple[Visitor | None, dict[str, Any], Response | None]:
    """The visitor and form of a POST, or the response refusing it (no session: to the
    sign-in page; a missing or wrong CSRF token, or a foreign Origin: 403)."""
    visitor = signed_in(request)
    if visitor is None:
        return None, {}, to_signin(request)
    origin = request.headers.get("origin")
    form = await request.form()
    data = {"ids": form.getlist("ids"), **{k: str(v) for k, v in form.items() if k != "ids"}}
    own = f"{request.url.scheme}://{request.url.netloc}"
    if (origin is not None and origin != own) or not web_state(request).sessions.check_csrf(
            visitor.session, str(data.get("csrf", ""))):
        return visitor, data, page(request, "error.html", 403, visitor,
                                    heading="Form refused",
                                    message="This form expired or came from another site"
                                            " (its CSRF token does not match your session):"
                                            " reload the page and try again.")
    return visitor, data, None


