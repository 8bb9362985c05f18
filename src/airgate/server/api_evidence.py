"""Evidence over HTTP: submit (evaluate and enqueue) and evaluate (decide only).

The body is the evidence itself, in any format the CLI reads: a native
Investigation (JSON or YAML), a Graph alert or incident, a Graph list
(``{"value": [...]}``), or NDJSON of them. ``Content-Type`` names the format when
it can (``application/x-ndjson``, ``application/yaml``); JSON and NDJSON are also
told apart from the body. Evidence text is data: it is evaluated, stored and
returned as JSON strings, never put in a header.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from airgate.errors import EvidenceError, Finding, Location
from airgate.server import models
from airgate.server.auth import Actor, Context
from airgate.server.context import AppContext

router = APIRouter()

_SUFFIX = {"application/x-ndjson": ".ndjson", "application/ndjson": ".ndjson",
           "application/jsonl": ".ndjson", "application/x-jsonlines": ".ndjson",
           "application/yaml": ".yaml", "application/x-yaml": ".yaml", "text/yaml": ".yaml"}
_BODY = {"required": True, "description": "Evidence in any format airgate reads"
         " (docs/evidence.md).", "content": {
             "application/json": {"schema": {"type": "object"}},
             "application/x-ndjson": {"schema": {"type": "string"}},
             "application/yaml": {"schema": {"type": "string"}}}}
Full = Annotated[bool, Query(description="Each outcome with its whole action record and"
                             " decision (as airgate submit --format json)")]
Strict = Annotated[bool, Query(description="Refuse (400) and submit nothing when reading"
                               " the evidence gave a warning")]


class _Body(io.BytesIO):
    """The request body as a named file, so the reader's locations say where."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name


def _source(request: Request, body: bytes) -> _Body:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    suffix = _SUFFIX.get(media, "")
    return _Body(body, f"<request>{suffix}" if suffix else "<request>")


class _Read:
    """Evidence read from one body: the items lazily, the investigations and warnings seen."""

    def __init__(self, source: _Body) -> None:
        from airgate.evidence.reader import iter_evidence

        self.seen: dict[str, None] = {}
        self.warnings: list[Finding] = []
        self._items = iter_evidence(source, on_warning=self.warnings.append)

    def __iter__(self) -> Iterator[Any]:
        for item in self._items:
            self.seen.setdefault(item.investigation)
            yield item


class _StrictRefusal(EvidenceError):
    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        super().__init__(f"strict: reading the evidence gave {len(findings)} warning(s);"
                         f" nothing submitted (first: {findings[0]})", Location("<request>"),
                         code="strict")


def _decisions(ctx: AppContext, read: _Read) -> list[Any]:
    return list(ctx.engine.evaluate(iter(read)))


@router.post("/evidence", tags=["evidence"], openapi_extra={"requestBody": _BODY},
             summary="Submit evidence: evaluate it and enqueue the actions it gets",
             response_model=models.SubmitResult,
             responses={413: {"model": models.Problem, "description": "Body too large"},
                        **{s: {"model": models.Problem} for s in (400, 401, 403, 409, 422)}})
async def submit(request: Request, actor: Actor, ctx: Context, strict: Strict = False,
                 full: Full = False) -> Response:
    from starlette.concurrency import run_in_threadpool

    body = await request.body()
    result = await run_in_threadpool(_submit, ctx, _source(request, body), actor, strict, full)
    # Built from the library's own records: returned as it is, not validated again (a batch
    # of thousands of outcomes would spend longer in validation than in the queue).
    return JSONResponse(result, headers=_spread(ctx))


class _Turn:
    """A request's turn in the evidence lane: ended early by ``end``, else on exit."""

    def __init__(self, lane: threading.Lock) -> None:
        self._lane = lane
        self._held = False

    def __enter__(self) -> _Turn:
        self._lane.acquire()
        self._held = True
        return self

    def end(self) -> None:
        if self._held:
            self._held = False
            self._lane.release()

    def __exit__(self, *exc_info: object) -> None:
        self.end()


def _spread(ctx: AppContext) -> dict[str, str]:
    """With several server processes on one port, an evidence answer closes its
    connection: a client's next batch is then accepted by whichever process is free.
    Kept alive, a client's connections stay with the processes that first accepted
    them, and two of them on one process left the other idle (benchmarks/README.md)."""
    return {"Connection": "close"} if ctx.settings.processes > 1 else {}


def _submit(ctx: AppContext, source: _Body, actor: str, strict: bool,
            full: bool) -> dict[str, Any]:
    from airgate.engine.decision_json import decision_to_dict

    with _Turn(ctx.evidence_lane) as turn:
        read = _Read(source)
        decisions = _decisions(ctx, read)
        if strict and read.warnings:
            raise _StrictRefusal(read.warnings)
        queue = ctx.queue()
        # The lane is let go once the batch is written: automatic actions then run while
        # the next request reads and writes (an executor may take seconds to answer).
        outcomes = queue.submit(decisions, actor=actor, catalog=ctx.policy_set.catalog,
                                investigations=read.seen, stored=turn.end)
    if ctx.metrics is not None:
        ctx.metrics.submitted(outcomes)
    catalog = ctx.policy_set.catalog
    out = []
    for o in outcomes:
        d = o.decision
        row: dict[str, Any] = {
            "outcome": o.outcome, "action_id": o.action_id,
            "status": o.action.status if o.action else None, "investigation": d.investigation,
            "action_type": d.action, "entity_type": d.entity.type, "entity_name": d.entity.name,
            "excluded_by": list(d.suppressed_by)}
        if full:
            row["action"] = o.action.as_dict() if o.action else None
            row["decision"] = decision_to_dict(d, catalog)
        out.append(row)
    return {"outcomes": out, "investigations": list(read.seen),
            "warnings": [f.as_dict() for f in read.warnings]}


@router.post("/evaluate", tags=["evidence"], openapi_extra={"requestBody": _BODY},
             summary="Evaluate evidence under the server's policy; enqueue nothing",
             response_model=models.EvaluateResult,
             responses={413: {"model": models.Problem, "description": "Body too large"},
                        **{s: {"model": models.Problem} for s in (400, 401, 422)}})
async def evaluate(request: Request, response: Response, _actor: Actor,
                   ctx: Context) -> dict[str, Any]:
    from starlette.concurrency import run_in_threadpool

    body = await request.body()
    response.headers.update(_spread(ctx))
    return await run_in_threadpool(_evaluate, ctx, _source(request, body))


def _evaluate(ctx: AppContext, source: _Body) -> dict[str, Any]:
    from airgate.engine.decision_json import decision_to_dict

    read = _Read(source)
    catalog = ctx.policy_set.catalog
    with ctx.evidence_lane:
        decided = _decisions(ctx, read)
    decisions = [decision_to_dict(d, catalog) for d in decided]
    return {"decisions": decisions, "warnings": [f.as_dict() for f in read.warnings]}

