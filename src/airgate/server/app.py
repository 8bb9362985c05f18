"""``create_app(settings)``: the FastAPI application of ``airgate serve``.

One app holds one :class:`~airgate.server.context.AppContext` (store, policy set,
engine, config) in ``app.state.airgate``. The JSON API is ``api.py`` under
``/api/v1``; the web Action Center (``web.py``, when present) adds its pages.
Every endpoint but ``/healthz`` needs a token (``auth.py``).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from airgate.server import problems
from airgate.server.auth import Actor, Context
from airgate.server.context import AppContext, ServerSettings
from airgate.server.metrics import CONTENT_TYPE, Metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_PREFIX = "/api/v1"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def create_app(settings: ServerSettings) -> FastAPI:
    """The application over the store and policy ``settings`` name (opened now, so a
    bad policy or store fails at start-up, not on the first request)."""


    ctx = AppContext(settings)
    try:
        return _build(ctx, settings)
    except BaseException:
        ctx.close()  # the store opened above: never left to the garbage collector
        raise


ENV_SETTINGS = "AIRGATE_SERVE_SETTINGS"


def settings_env(settings: ServerSettings) -> str:
    """``settings`` as the text ``app_from_env`` reads: how ``airgate serve --workers``
    hands them to the processes uvicorn starts (they import the app by name)."""
    return json.dumps({"db": settings.db, "policy_paths": list(settings.policy_paths),
                       "config_path": settings.config_path, "worker": settings.worker,
                       "worker_interval": settings.worker_interval,
                       "max_body_bytes": settings.max_body_bytes, "engine": settings.engine,
                       "processes": settings.processes})


def app_from_env() -> FastAPI:
    """The app of one ``airgate serve --workers`` process (uvicorn's factory): the
    settings its parent checked and put in ``AIRGATE_SERVE_SETTINGS``."""
    raw = json.loads(os.environ[ENV_SETTINGS])
    return create_app(ServerSettings(**{**raw, "policy_paths": tuple(raw["policy_paths"])}))


def _build(ctx: AppContext, settings: ServerSettings) -> FastAPI:
    from importlib.metadata import version

    from airgate.server import api, background

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        thread = None
        if settings.worker:
            thread = background.start(ctx, settings.worker_interval)
        try:
            yield
        finally:
            ctx.stop.set()
            if thread is not None:
                thread.join(timeout=30)
            ctx.close()

    app = FastAPI(
        title="airgate", version=version("airgate"), lifespan=lifespan,
        description="Policies decide remediation actions; a queue holds them for approval;"
                    " a ledger keeps their history and undo. Every endpoint but /healthz"
                    " needs `Authorization: Bearer <token>` (airgate token create).",
        # Served below behind a token, like every endpoint but /healthz.
        openapi_url=None, docs_url=None, redoc_url=None,
    )
    app.state.airgate = ctx
    metrics = ctx.metrics = Metrics(ctx.store)
    problems.install(app)

    @app.get("/healthz", tags=["server"],
             summary="Liveness: the server answers and its store opens (no token)")
    def healthz() -> dict[str, str]:
        ctx.store.schema_version()
        return {"status": "ok"}

    # HEAD, which many load balancers send: the same check, left out of the document
    # (one operation per path and method there).
    app.add_api_route("/healthz", healthz, methods=["HEAD"], include_in_schema=False)

    @app.get("/metrics", tags=["server"], summary="Prometheus metrics (text format)",
             response_class=Response,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
    def metrics_page(_actor: Actor, _ctx: Context) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get(f"{API_PREFIX}/openapi.json", tags=["server"], include_in_schema=False)
    def openapi_document(_actor: Actor) -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.as_problem_json(app.openapi())
        return app.openapi_schema

    app.include_router(api.router, prefix=API_PREFIX)
    web = _web_module()
    if web is not None:
        app.include_router(web.router)
    app.add_middleware(_Timed, metrics=metrics)
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes)
    return app


def _web_module() -> Any:
    """``airgate.server.web`` (the web Action Center) when it is installed."""
    try:
        return importlib.import_module("airgate.server.web")
    except ModuleNotFoundError as exc:
        if exc.name == "airgate.server.web":
            return None
        raise


class _BodyLimit:
    """Refuse a request body past ``limit`` bytes with 413, before it is read whole:
    a declared Content-Length at once, a chunked body as soon as it passes the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge(413, self.message())
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    def message(self) -> str:
        return (f"the request body is larger than the server takes ({self.limit} bytes):"
                " split the evidence into several requests")

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problems.problem(413, "Content too large", self.message(), code="too-large")
        await response(scope, receive, send)


class _TooLarge(StarletteHTTPException):
    """Raised while a body is read (FastAPI passes HTTP exceptions on as they are)."""


class _Timed:
    """Request latency by method, route template (never the raw path) and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            method = scope.get("method", "")
            self.metrics.latency.labels(method if method in _METHODS else "other",
                                        _template(scope),
                                        str(status)).observe(time.perf_counter() - start)


def _template(scope: Scope) -> str:
    """The matched route's path template with its router's prefix (FastAPI keeps the
    full one in its own scope entry for included routers), ``unmatched`` for a 404."""
    effective = (scope.get("fastapi") or {}).get("effective_route_context")
    route = scope.get("route")
    for found in (effective, route):
        template = getattr(found, "path_format", None)
        if isinstance(template, str):
            return template
    return "unmatched"


__all__ = ["API_PREFIX", "AppContext", "ServerSettings", "create_app"]
