"""What ``ledger verify`` reads to replay the ledger against the tables: one range of
action ids at a time, so memory stays flat however large the store is; and how a row
becomes a record."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Row, and_, func, select

from airgate.runtime.records import ActionRecord, LedgerEntry
from airgate.runtime.store import schema as s


def action_of(row: Row[Any]) -> ActionRecord:
    return action_from(dict(row._mapping))


def action_from(data: dict[str, Any]) -> ActionRecord:
    """An action record from its stored columns (``data`` is consumed)."""
    for name in ("rules", "reasons"):
        data[name] = tuple(json.loads(data[name]))
    data["approval"] = json.loads(data["approval"])
    for name in ("undo", "result"):
        data[name] = None if data[name] is None else json.loads(data[name])
    data.pop("primary_rule", None)
    return ActionRecord(**data)


def entry_of(row: Row[Any]) -> LedgerEntry:
    data = dict(row._mapping)
    data["details"] = json.loads(data["details"])
    return LedgerEntry(**data)


class AuditReads:
    """Range reads of a transaction (mixed into ``Tx``). Rows of actions and entries are
    decoded here, and ``Tx`` uses the same decoders."""

    conn: Connection

    def ledger_for_range(self, low: int, high: int) -> dict[int, list[LedgerEntry]]:
        """The entries of actions ``low`` to ``high`` (inclusive), by action, in order."""
        cols = s.ledger.c
        rows = self.conn.execute(select(s.ledger).where(and_(
            cols.action_id >= low, cols.action_id <= high)).order_by(cols.seq)).all()
        out: dict[int, list[LedgerEntry]] = {}
        for r in rows:
            out.setdefault(int(r.action_id), []).append(entry_of(r))
        return out

    def actions_range(self, low: int, high: int) -> list[ActionRecord]:
        cols = s.actions.c
        rows = self.conn.execute(select(s.actions).where(and_(
            cols.id >= low, cols.id <= high)).order_by(cols.id)).all()
        return [action_of(r) for r in rows]

    def approvals_range(self, low: int, high: int) -> dict[int, list[tuple[str, str | None]]]:
        cols = s.approvals.c
        rows = self.conn.execute(select(cols.action_id, cols.actor, cols.comment).where(and_(
            cols.action_id >= low, cols.action_id <= high)).order_by(cols.id)).all()
        out: dict[int, list[tuple[str, str | None]]] = {}
        for r in rows:
            out.setdefault(int(r.action_id), []).append((r.actor, r.comment))
        return out

    def evidence_range(self, low: int, high: int) -> dict[int, list[str]]:
        """The evidence documents (stored JSON text) of actions ``low`` to ``high``."""
        cols = s.evidence.c
        rows = self.conn.execute(select(cols.action_id, cols.data).where(and_(
            cols.action_id >= low, cols.action_id <= high)).order_by(cols.id)).all()
        out: dict[int, list[str]] = {}
        for r in rows:
            out.setdefault(int(r.action_id), []).append(str(r.data))
        return out

    def highest_action_id(self) -> int:
        """The highest action id in the actions table or the ledger."""
        in_actions = self.conn.execute(select(func.max(s.actions.c.id))).scalar() or 0
        in_ledger = self.conn.execute(select(func.max(s.ledger.c.action_id))).scalar() or 0
        return int(max(in_actions, in_ledger))

