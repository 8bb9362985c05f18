"""The JSON API under ``/api/v1``: the CLI's queue commands over HTTP."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from airgate.server.auth import Actor, Context

router = APIRouter()


class WhoAmI(BaseModel):
    actor: str
    roles: list[str]


@router.get("/whoami", tags=["server"], summary="The actor of this token and its roles")
def whoami(actor: Actor, ctx: Context) -> WhoAmI:
    return WhoAmI(actor=actor, roles=list(ctx.queue().config.roles_of(actor)))
