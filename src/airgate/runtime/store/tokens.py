"""The API tokens table as a transaction reads and writes it (mixed into ``Tx``).

Only hashes are stored; a row is a record of who a token acts as, when it stops
working and whether it was revoked. The caller (``runtime/tokens.py``) logs each
change to the ledger in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from airgate.runtime.store import schema as s


@dataclass(frozen=True)
class TokenRow:
    """One stored API token: never the token itself, only its hash and prefix."""

    id: int
    prefix: str
    actor: str
    created_at: str
    created_by: str
    expires_at: str | None
    revoked_at: str | None
    revoked_by: str | None
    last_used_at: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "prefix": self.prefix, "actor": self.actor,
                "created_at": self.created_at, "created_by": self.created_by,
                "expires_at": self.expires_at, "revoked_at": self.revoked_at,
                "revoked_by": self.revoked_by, "last_used_at": self.last_used_at}


_COLUMNS = (s.api_tokens.c.id, s.api_tokens.c.prefix, s.api_tokens.c.actor,
            s.api_tokens.c.created_at, s.api_tokens.c.created_by, s.api_tokens.c.expires_at,
            s.api_tokens.c.revoked_at, s.api_tokens.c.revoked_by, s.api_tokens.c.last_used_at)


def _token_of(row: Any) -> TokenRow:  # a Row of _COLUMNS
    return TokenRow(**dict(row._mapping))


class TokenOps:
    """Reads and writes of the ``api_tokens`` table."""

    conn: Connection

    def add_token(self, *, prefix: str, token_hash: str, actor: str, at: str, by: str,
                  expires_at: str | None) -> int:
        """Store a token's hash; its id is the next one (under the write lock)."""
        new_id = int(self.conn.execute(select(func.max(s.api_tokens.c.id))).scalar() or 0) + 1
        self.conn.execute(insert(s.api_tokens).values(
            id=new_id, prefix=prefix, token_hash=token_hash, actor=actor, created_at=at,
            created_by=by, expires_at=expires_at))
        return new_id

    def token_by_hash(self, token_hash: str) -> TokenRow | None:
        row = self.conn.execute(select(*_COLUMNS).where(
            s.api_tokens.c.token_hash == token_hash)).first()
        return None if row is None else _token_of(row)

    def token_by_id(self, token_id: int) -> TokenRow | None:
        row = self.conn.execute(select(*_COLUMNS).where(s.api_tokens.c.id == token_id)).first()
        return None if row is None else _token_of(row)

    def list_tokens(self) -> list[TokenRow]:
        rows = self.conn.execute(select(*_COLUMNS).order_by(s.api_tokens.c.id)).all()
        return [_token_of(r) for r in rows]

    def revoke_token(self, token_id: int, *, at: str, by: str) -> bool:
        """Mark a token revoked; False when it already was (or does not exist)."""
        cols = s.api_tokens.c
        done = self.conn.execute(update(s.api_tokens).where(
            cols.id == token_id, cols.revoked_at.is_(None)).values(revoked_at=at, revoked_by=by))
        return bool(done.rowcount)

    def touch_token(self, token_id: int, at: str) -> None:
        self.conn.execute(update(s.api_tokens).where(s.api_tokens.c.id == token_id)
                          .values(last_used_at=at))
