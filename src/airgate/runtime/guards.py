"""Who may do what: actor names, one action type per bulk operation, roles, refusals.

Shared by approvals and undo/redo. A refusal is written to the ledger before
PermissionDenied is raised.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from airgate.catalog import GLOBAL_ADMIN
from airgate.errors import PermissionDenied, UsageError
from airgate.runtime.config import normalize_actor
from airgate.runtime.records import AUTOMATION, SYSTEM, ActionRecord, LedgerEvent

if TYPE_CHECKING:
    from airgate.runtime.context import Runtime
    from airgate.runtime.store import Tx

RESERVED_ACTORS = (AUTOMATION, SYSTEM)


def check_actor(actor: str) -> str:
    """The actor's normalized name (what is stored and compared); UsageError when the name
    is empty, holds control characters or is reserved (``Automation`` too)."""
    name = normalize_actor(actor or "")
    if not name:
        raise UsageError("no actor: pass --actor or set AIRGATE_ACTOR")
    if any(ch < " " or "\x7f" <= ch < "\xa0" for ch in name):
        raise UsageError(f"the actor name {actor!r} holds control characters")
    if name in RESERVED_ACTORS:
        raise UsageError(f"the actor name {actor!r} is reserved for airgate itself")
    return name


def same_actor(a: str | None, b: str | None) -> bool:
    """Whether two stored or given names are one actor (older rows may not be normalized)."""
    return a is not None and b is not None and normalize_actor(a) == normalize_actor(b)


def same_type(actions: Sequence[ActionRecord], verb: str) -> None:
    """Bulk operations combine only actions of one type (as in Defender)."""
    types = sorted({a.action_type for a in actions})
    if len(types) > 1:
        raise UsageError(
            f"{verb} several actions at once only when they share an action type;"
            f" these are {', '.join(types)}"
        )


def role_problem(queue: Runtime, actor: str, allowed: Iterable[str], what: str) -> str | None:
    roles = queue.config.roles_of(actor)
    allowed = tuple(allowed)
    if GLOBAL_ADMIN in roles or set(roles) & set(allowed):
        return None
    held = ", ".join(roles) if roles else "no role"
    return f"{actor} holds {held}; {what} needs one of: {', '.join(allowed) or GLOBAL_ADMIN}"


def refuse(queue: Runtime, tx: Tx, refusals: list[tuple[ActionRecord, str]], actor: str,
           verb: str, at: str) -> PermissionDenied:
    for action, why in refusals:
        tx.log(LedgerEvent("refused", actor, action.id, action.status, action.status, why,
                           {"attempt": verb}), at)
    first = refusals[0]
    more = f" (and {len(refusals) - 1} more)" if len(refusals) > 1 else ""
    return PermissionDenied(f"cannot {verb} action {first[0].id}: {first[1]}{more}")
