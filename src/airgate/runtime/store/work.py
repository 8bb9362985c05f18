"""The worker's queries: which work is runnable, and the leases that claim it.

Mixed into ``Tx``. A worker claims a unit inside a write transaction: the candidate
rows are read ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite has one writer at a
time and ignores the clause), the action moves on with its ledger entry, and a
lease row names the owner and a deadline. The lease is what protects the run
outside any transaction: after its deadline another worker may take the action
over, under the run key the ledger already holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, text, update

from airgate.runtime.records import ActionRecord
from airgate.runtime.store import schema as s
from airgate.runtime.store.audit import action_from, action_of

CHANNEL = "airgate_work"  # PostgreSQL NOTIFY channel: work became runnable


class WorkQueries:
    """What a worker reads and writes in one transaction (mixed into ``Tx``)."""

    conn: Connection
    sqlite: bool

    # ------------------------------------------------------------ wake-up
    def notify_work(self) -> None:
        """Wake the workers when this transaction commits (PostgreSQL ``NOTIFY``; SQLite
        workers poll). Called by whatever makes work runnable, inside its transaction."""
        if not self.sqlite:
            self.conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})

    # ------------------------------------------------------------ runnable work
    def _locked(self, query: Any, limit: int) -> list[ActionRecord]:
        query = query.limit(limit).with_for_update(skip_locked=True, of=s.actions)
        return [action_of(r) for r in self.conn.execute(query).all()]

    def approved_waiting(self, limit: int = 1) -> list[ActionRecord]:
        """Approved actions no process started yet (``execution: worker``), oldest first."""
        a = s.actions.c
        return self._locked(select(s.actions).where(a.status == "approved")
                            .order_by(a.approved_at, a.id), limit)

    def undo_requests(self, limit: int = 1) -> list[tuple[ActionRecord, str]]:
        """Completed actions with an undo requested, and who requested each."""
        a, w = s.actions.c, s.work_leases.c
        query = (select(s.actions, w.requested_by.label("work_requested_by"))
                 .select_from(s.actions.join(s.work_leases, w.action_id == a.id))
                 .where(and_(w.request == "undo", a.status == "completed"))
                 .order_by(w.updated_at, a.id).limit(limit)
                 .with_for_update(skip_locked=True, of=s.actions))
        out = []
        for row in self.conn.execute(query).all():
            data = dict(row._mapping)
            who = str(data.pop("work_requested_by") or "")
            out.append((action_from(data), who))
        return out

    def stale_requests(self, limit: int = 100) -> list[int]:
        """Undo requests on actions no longer completed (reverted or undone meanwhile)."""
        a, w = s.actions.c, s.work_leases.c
        rows = self.conn.execute(
            select(w.action_id).select_from(s.work_leases.join(s.actions, w.action_id == a.id))
            .where(and_(w.request == "undo", a.status != "completed")).limit(limit)).all()
        return [int(r.action_id) for r in rows]

    def due_locked(self, column: str, status: str, now: str, limit: int = 1
                   ) -> list[ActionRecord]:
        """``Tx.due`` for claiming: rows another worker is claiming are skipped."""
        a = s.actions.c
        col = a[column]
        return self._locked(select(s.actions).where(and_(
            a.status == status, col.is_not(None), col <= now)).order_by(col, a.id), limit)

    def running_claimable(self, now: str, limit: int = 100
                          ) -> list[tuple[ActionRecord, dict[str, Any] | None]]:
        """Running actions no live lease holds, with their lease row (None: never leased,
        left by a process that ran it inline). The caller decides, from ``started_at`` and
        the executor's time-out, whether an unleased one is old enough to reconcile."""
        a, w = s.actions.c, s.work_leases.c
        query = (select(s.actions, w.owner.label("work_owner"),
                        w.lease_until.label("work_until"), w.attempts.label("work_attempts"))
                 .select_from(s.actions.outerjoin(s.work_leases, w.action_id == a.id))
                 .where(and_(a.status == "running",
                             or_(w.lease_until.is_(None), w.lease_until <= now)))
                 .order_by(a.started_at, a.id).limit(limit)
                 .with_for_update(skip_locked=True, of=s.actions))
        out: list[tuple[ActionRecord, dict[str, Any] | None]] = []
        for row in self.conn.execute(query).all():
            data = dict(row._mapping)
            lease = {"owner": data.pop("work_owner"), "lease_until": data.pop("work_until"),
                     "attempts": data.pop("work_attempts")}
            out.append((action_from(data),
                        None if lease["lease_until"] is None else lease))
        return out

    def live_leases(self, ids: Iterable[int], now: str) -> set[int]:
        """Which of ``ids`` a worker holds a lease on that has not run out."""
        w = s.work_leases.c
        wanted = list(dict.fromkeys(ids))
        found: set[int] = set()
        for start in range(0, len(wanted), 500):
            rows = self.conn.execute(select(w.action_id).where(and_(
                w.action_id.in_(wanted[start:start + 500]), w.owner.is_not(None),
                w.lease_until > now))).all()
            found.update(int(r.action_id) for r in rows)
        return found

    def work_waiting(self, now: str, stale_before: str | None = None) -> bool:
        """Whether anything might be runnable now: one indexed read per kind, no lock.
        A worker asks this first, so an idle one never takes the write lock.
        ``stale_before``: an unleased run started later than this is not looked at (the
        process that started it may still be running it)."""
        a, w = s.actions.c, s.work_leases.c
        probes = [
            select(a.id).where(a.status == "approved"),
            select(w.action_id).where(w.request == "undo"),
            select(a.id).where(and_(a.status == "completed", a.revert_at.is_not(None),
                                    a.revert_at <= now)),
            select(a.id).where(and_(a.status == "pending", a.expires_at.is_not(None),
                                    a.expires_at <= now)),
            select(a.id).select_from(s.actions.outerjoin(s.work_leases, w.action_id == a.id))
            .where(and_(a.status == "running", or_(
                and_(w.lease_until.is_(None), a.started_at <= (stale_before or now)),
                w.lease_until <= now))),
        ]
        return any(self.conn.execute(p.limit(1)).first() is not None for p in probes)

    # ------------------------------------------------------------ leases
    def lease_of(self, action_id: int) -> dict[str, Any] | None:
        w = s.work_leases.c
        row = self.conn.execute(select(s.work_leases).where(w.action_id == action_id)).first()
        return None if row is None else dict(row._mapping)

    def take_lease(self, action_id: int, owner: str, until: str, at: str) -> int:
        """Hold ``action_id`` as ``owner`` until ``until``; returns the attempt number (1:
        the first claim of this run; more: a takeover or a retry)."""
        w = s.work_leases.c
        found = self.lease_of(action_id)
        if found is None:
            self.conn.execute(insert(s.work_leases).values(
                action_id=action_id, request=None, requested_by=None, owner=owner,
                lease_until=until, attempts=1, updated_at=at))
            return 1
        attempts = int(found["attempts"] or 0) + 1
        self.conn.execute(update(s.work_leases).where(w.action_id == action_id).values(
            request=None, requested_by=None, owner=owner, lease_until=until,
            attempts=attempts, updated_at=at))
        return attempts

    def extend_lease(self, action_id: int, owner: str, until: str, at: str) -> bool:
        """Push the deadline of a lease ``owner`` still holds; False when it lost it."""
        w = s.work_leases.c
        result = self.conn.execute(update(s.work_leases).where(and_(
            w.action_id == action_id, w.owner == owner)).values(lease_until=until, updated_at=at))
        return bool(result.rowcount == 1)

    def release_lease(self, action_id: int, owner: str, retry_at: str | None = None) -> None:
        """Give the action up: forget it, or (``retry_at``) leave it free from that time on
        (an outcome still unknown is asked again then, not at every poll)."""
        w = s.work_leases.c
        mine = and_(w.action_id == action_id, w.owner == owner)
        if retry_at is None:
            self.conn.execute(delete(s.work_leases).where(mine))
        else:
            self.conn.execute(update(s.work_leases).where(mine).values(
                owner=None, lease_until=retry_at))

    def request_undo(self, action_id: int, actor: str, at: str) -> None:
        """Record that ``actor`` asked a worker to undo ``action_id`` (the caller logs it)."""
        w = s.work_leases.c
        values = {"request": "undo", "requested_by": actor, "owner": None,
                  "lease_until": None, "updated_at": at}
        if self.conn.execute(update(s.work_leases).where(w.action_id == action_id).values(
                **values)).rowcount == 0:
            self.conn.execute(insert(s.work_leases).values(action_id=action_id, attempts=0,
                                                           **values))

    def drop_requests(self, ids: Iterable[int]) -> None:
        w = s.work_leases.c
        wanted = list(ids)
        if wanted:
            self.conn.execute(delete(s.work_leases).where(and_(
                w.action_id.in_(wanted), w.request == "undo")))
