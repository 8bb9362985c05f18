"""API tokens for ``airgate serve``: who a request acts as.

A token is ``agt_`` and 43 URL-safe characters (256 random bits). It is shown once,
when created; the store keeps only its SHA-256, so a copy of the database lets nobody
act as anyone. The prefix (``agt_`` and its first 8 characters) names the token in
lists and in the ledger, where creation and revocation are recorded without the
token. Whoever can open the store directly (the ``airgate token`` commands) may create
tokens: direct store access already lets one write anything, so it is the admin's.
A revoked or expired token is refused at once; ``last_used_at`` is updated at most
once a minute per token, so reading a token costs no write on every request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import TYPE_CHECKING

from airgate.errors import NotFound, StoreError, Unauthenticated, UsageError
from airgate.runtime.clock import format_time, parse_time
from airgate.runtime.guards import check_actor
from airgate.runtime.records import LedgerEvent

if TYPE_CHECKING:
    from airgate.runtime.store import Store, TokenRow

PREFIX = "agt_"
SHOWN = 8  # characters after the prefix that name a token
TOKEN_BYTES = 32
TOUCH_EVERY = dt.timedelta(seconds=60)
MAX_TOKEN_CHARS = 100  # anything longer is not one of ours: refused before hashing


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def create(store: Store, *, actor: str, by: str, now: dt.datetime,
           expires_in: int | None = None) -> tuple[str, TokenRow]:
    """A new token acting as ``actor``: the raw token (show it once) and its stored row.
    ``expires_in``: seconds it stays valid; None never expires."""
    actor = check_actor(actor)
    by = check_actor(by)
    if expires_in is not None and expires_in <= 0:
        raise UsageError("a token's expiry must be a positive duration")
    raw = PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    prefix = raw[:len(PREFIX) + SHOWN]
    at = format_time(now)
    expires = None if expires_in is None else format_time(
        now + dt.timedelta(seconds=expires_in))
    with store.write() as tx:
        token_id = tx.add_token(prefix=prefix, token_hash=digest(raw), actor=actor, at=at,
                                by=by, expires_at=expires)
        tx.log(LedgerEvent("token_created", by, None, None, None, None, {
            "token_id": token_id, "prefix": prefix, "actor": actor, "expires_at": expires}), at)
        row = tx.token_by_id(token_id)
    assert row is not None
    return raw, row


def list_tokens(store: Store) -> list[TokenRow]:
    with store.read() as tx:
        return tx.list_tokens()


def revoke(store: Store, token_id: int, *, by: str, now: dt.datetime) -> TokenRow:
    """Revoke a token (recorded in the ledger); revoking it again changes nothing."""
    by = check_actor(by)
    at = format_time(now)
    with store.write() as tx:
        row = tx.token_by_id(token_id)
        if row is None:
            raise NotFound(f"no token {token_id} (airgate token list shows them)")
        if tx.revoke_token(token_id, at=at, by=by):
            tx.log(LedgerEvent("token_revoked", by, None, None, None, None, {
                "token_id": token_id, "prefix": row.prefix, "actor": row.actor}), at)
        found = tx.token_by_id(token_id)
    assert found is not None
    return found


def verify(store: Store, raw: str, *, now: dt.datetime) -> str:
    """The actor a raw token acts as; Unauthenticated when it is malformed, unknown,
    revoked or expired. The message never repeats the token."""
    if not raw.startswith(PREFIX) or len(raw) > MAX_TOKEN_CHARS:
        raise Unauthenticated("not an airgate token (they start with agt_)")
    wanted = digest(raw)
    with store.read() as tx:
        row = tx.token_by_hash(wanted)
    if row is None:
        raise Unauthenticated("unknown token")
    at = format_time(now)
    if row.revoked_at is not None:
        raise Unauthenticated(f"token {row.prefix}… was revoked at {row.revoked_at}")
    if row.expires_at is not None and row.expires_at <= at:
        raise Unauthenticated(f"token {row.prefix}… expired at {row.expires_at}")
    if row.last_used_at is None or parse_time(row.last_used_at) + TOUCH_EVERY <= now:
        try:
            with store.write() as tx:
                tx.touch_token(row.id, at)
        except StoreError:
            pass  # the store is busy (a long submit holds the lock): last use is a hint
    return row.actor

