"""Errors as RFC 9457 problem details (``application/problem+json``).

Each airgate error class has one status: a refused transition is 409, a missing
role 403, no or a bad token 401, an unknown id 404, bad input 400 (422 when the
request does not match the API's schema). The ``detail`` is the CLI's own located
message; JSON escapes what needs escaping and nothing reaches a header. Anything
else is a 500 whose body says only that, while the traceback goes to the log.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from airgate.errors import (
    AirgateError,
    EvidenceError,
    InputError,
    NotFound,
    PermissionDenied,
    PolicyError,
    StoreError,
    TransitionError,
    Unauthenticated,
    UsageError,
)

log = logging.getLogger("airgate.server")
PROBLEM = "application/problem+json"
TYPE_BASE = "https://airgate.invalid/problems/"  # a stable identifier, not a page to fetch

# Most specific first: the first class an error is an instance of decides.
STATUS: tuple[tuple[type[AirgateError], int, str], ...] = (
    (Unauthenticated, 401, "Unauthenticated"),
    (PermissionDenied, 403, "Forbidden"),
    (NotFound, 404, "Not found"),
    (TransitionError, 409, "Transition refused"),
    (StoreError, 503, "Store unavailable"),
    (EvidenceError, 400, "Bad evidence"),
    (PolicyError, 400, "Bad policy"),
    (InputError, 400, "Bad input"),
    (UsageError, 400, "Bad request"),
)


def status_of(exc: AirgateError) -> tuple[int, str]:
    for cls, status, title in STATUS:
        if isinstance(exc, cls):
            return status, title
    return 400, "Request failed"


def problem(status: int, title: str, detail: str, *, code: str | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_BASE + (code or "about-blank"), "title": title,
                            "status": status, "detail": detail}
    if code:
        body["code"] = code
    body.update(extra)
    return JSONResponse(jsonable_encoder(body), status_code=status, media_type=PROBLEM,
                        headers=headers)


def airgate_problem(exc: AirgateError) -> JSONResponse:
    status, title = status_of(exc)
    extra: dict[str, Any] = {}
    if exc.location is not None:
        loc = exc.location
        extra["location"] = {"file": loc.file, "line": loc.line, "column": loc.column,
                             "json_path": loc.json_path}
    findings = getattr(exc, "findings", None)
    if findings:
        extra["findings"] = [f.as_dict() for f in findings]
    outcomes = getattr(exc, "outcomes", None)
    if outcomes is not None:
        # SubmitIncomplete: what was stored before the failure.
        extra["stored"] = [{"outcome": o.outcome, "action_id": o.action_id} for o in outcomes]
    headers = {"WWW-Authenticate": 'Bearer realm="airgate"'} if status == 401 else None
    return problem(status, title, str(exc), code=exc.code, headers=headers, **extra)


def as_problem_json(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with every error response declared as what it is sent as,
    ``application/problem+json`` (FastAPI files a response model under JSON)."""
    ref = "#/components/schemas/Problem"
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                schema = content.get("application/json", {}).get("schema", {})
                if schema.get("$ref") == ref:
                    response["content"] = {PROBLEM: {"schema": schema}}
    return document


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem JSON."""

    async def on_airgate(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AirgateError)
        return airgate_problem(exc)

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
                   "type": str(e.get("type", ""))} for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return problem(422, "Invalid request", f"{where}: {first['msg']}" if where
                       else str(first["msg"]), code="validation", errors=errors)

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, _title(exc.status_code), str(exc.detail),
                       headers=headers)

    async def on_anything(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path,
                  exc_info=(type(exc), exc, exc.__traceback__))
        return problem(500, "Internal server error",
                       "the server failed on this request; the details are in its log",
                       code="internal")

    app.add_exception_handler(AirgateError, on_airgate)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_anything)


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
