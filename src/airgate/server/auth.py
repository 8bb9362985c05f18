"""Who a request acts as: the actor of its API token (``runtime/tokens.py``).

The API takes ``Authorization: Bearer agt_...``. The web pages (``session.py``)
reuse :func:`actor_of_token` for their sign-in. Every refusal is 401 with a
``WWW-Authenticate: Bearer`` header; the token itself is never echoed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from airgate.errors import Unauthenticated
from airgate.server.context import AppContext

bearer = HTTPBearer(auto_error=False, description="An airgate API token (airgate token create)")


def app_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.airgate
    return ctx


def actor_of_token(ctx: AppContext, raw: str) -> str:
    """The actor a raw token acts as (Unauthenticated when it does not work)."""
    from airgate.runtime import tokens

    return tokens.verify(ctx.store, raw, now=ctx.now())


def current_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """FastAPI dependency: the actor of the request's Bearer token, else 401. Only the
    header counts, never a cookie: a browser cannot be made to send the header
    cross-site, so the API needs no CSRF defence (the web pages have their own)."""
    if credentials is None:
        raise Unauthenticated("no credentials: send Authorization: Bearer <token>"
                              " (airgate token create makes one)")
    if credentials.scheme.lower() != "bearer":
        raise Unauthenticated("use the Bearer scheme: Authorization: Bearer <token>")
    actor = actor_of_token(app_context(request), credentials.credentials)
    request.state.airgate_actor = actor
    return actor


Actor = Annotated[str, Depends(current_actor)]
Context = Annotated[AppContext, Depends(app_context)]
