"""One transaction on the store: the queries the queue needs, as records in and out."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.sql.compiler import SQLCompiler

from airgate.runtime.ledger import LedgerRow, canonical_text, row_hash_v2
from airgate.runtime.records import (
    LEDGER_STAMP,
    ActionFilter,
    ActionRecord,
    LedgerEntry,
    LedgerEvent,
)
from airgate.runtime.store import schema as s
from airgate.runtime.store.audit import AuditReads, action_from, action_of, entry_of
from airgate.runtime.store.tokens import TokenOps
from airgate.runtime.store.work import WorkQueries

_JSON_COLUMNS = ("rules", "approval", "reasons", "undo", "result")
CHUNK = 5000
_INSERTS: dict[tuple[str, str, tuple[str, ...]], SQLCompiler] = {}
IN_CHUNK = 500  # values in one IN (...): far below every driver's parameter limit


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# Not float: 0.0 and -0.0 are equal keys but spelled apart.
_PLAIN = (str, int, bool, type(None))


def _dumps(value: Any) -> str:
    # What json.dumps with these options does, without building an encoder per call.
    return _ENCODER.encode(value)


def _memo_key(value: Any) -> tuple[Any, ...] | None:
    """A key for a list of strings, or a dict with string keys of plain values and lists
    of strings (each value with its type: ``True`` and ``1`` are equal but spelled
    apart), or None: not worth remembering."""
    if isinstance(value, (list, tuple)):
        return ("list", *value) if all(type(v) is str for v in value) else None
    if type(value) is not dict:
        return None
    key: list[Any] = ["dict"]
    for k, v in value.items():
        if type(k) is not str:
            return None
        if type(v) in _PLAIN:
            key.append((k, type(v), v))
        elif type(v) is list and all(type(x) is str for x in v):
            key.append((k, list, *v))
        else:
            return None
    return tuple(key)


class Tx(AuditReads, WorkQueries, TokenOps):
    """Queries and changes inside one transaction (see ``Store.read`` and ``Store.write``)."""

    def __init__(self, conn: Connection, *, sqlite: bool) -> None:
        self.conn = conn
        self.sqlite = sqlite
        self._head: tuple[int, str] | None = None
        self._pending_ledger: list[tuple[LedgerEvent, str]] = []
        self.inserted = 0  # actions and evidence rows written: the store's cue to re-analyze

    def _insert_many(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert rows of plain values with the driver's own executemany.

        ``conn.execute(insert(table), rows)`` builds bound parameters per row, which
        cost as much as the database's own work on a submit batch; the columns here need
        no type processing, so the statement is compiled once and the rows handed over.
        """
        groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(row), []).append(row)
        dialect = self.conn.dialect
        if dialect.driver == "psycopg":
            # PostgreSQL takes a batch fastest as COPY: one statement, rows streamed.
            raw: Any = self.conn.connection.dbapi_connection
            with raw.cursor() as cur:
                for keys, group in groups.items():
                    with cur.copy(f"COPY {table.name} ({', '.join(keys)}) FROM STDIN") as copy:
                        for row in group:
                            copy.write_row(tuple(row[k] for k in keys))
            return
        for keys, group in groups.items():
            cache_key = (dialect.name, table.name, keys)
            compiled = _INSERTS.get(cache_key)
            if compiled is None:
                compiled = _INSERTS[cache_key] = insert(table).compile(
                    dialect=dialect, column_keys=list(keys))
            if compiled.positional:
                order = list(compiled.positiontup or ())
                if len(order) > 1:
                    params: Any = list(map(itemgetter(*order), group))
                else:
                    params = [tuple(r[k] for k in order) for r in group]
            else:
                params = [dict(r) for r in group]
            self.conn.exec_driver_sql(str(compiled), params)

    # ------------------------------------------------------------ locking, ledger
    def lock(self) -> None:
        """Serialize writers on the ledger head (BEGIN IMMEDIATE already does on SQLite)."""
        query = select(s.ledger_head.c.seq, s.ledger_head.c.hash).where(s.ledger_head.c.id == 1)
        if not self.sqlite:
            query = query.with_for_update()
        row = self.conn.execute(query).one()
        self._head = (int(row.seq), str(row.hash))

    def log(self, event: LedgerEvent, at: str) -> None:
        """Queue a ledger entry; it is chained and written when the transaction commits.
        Inside ``records.stamped`` its details also carry the stamp (a worker's id)."""
        stamp = LEDGER_STAMP.get()
        if stamp:
            event = replace(event, details={**event.details, **stamp})
        self._pending_ledger.append((event, at))

    def flush(self) -> None:
        if not self._pending_ledger:
            return
        assert self._head is not None, "ledger entries need a write transaction"
        seq, prev = self._head
        rows: list[dict[str, Any]] = []
        # The head stays in memory for the whole transaction: one hash per entry, no query.
        for ev, at in self._pending_ledger:
            seq += 1
            # Hash version 2: the store was migrated when it was opened, so every new row is.
            details = canonical_text(dict(ev.details))
            digest = row_hash_v2(seq, at, ev.event, ev.actor, ev.action_id, ev.state_before,
                              ev.state_after, ev.comment, details, prev)
            rows.append({"seq": seq, "at": at, "event": ev.event, "actor": ev.actor,
                         "action_id": ev.action_id, "state_before": ev.state_before,
                         "state_after": ev.state_after, "comment": ev.comment,
                         "details": details, "prev_hash": prev, "hash": digest})
            prev = digest
        self._pending_ledger.clear()
        for start in range(0, len(rows), CHUNK):
            self._insert_many(s.ledger, rows[start:start + CHUNK])
        self.conn.execute(update(s.ledger_head).where(s.ledger_head.c.id == 1).values(
            seq=seq, hash=prev))
        self._head = (seq, prev)

    def ledger_head(self) -> tuple[int, str]:
        row = self.conn.execute(select(s.ledger_head.c.seq, s.ledger_head.c.hash)).one()
        return int(row.seq), str(row.hash)

    def ledger_meta(self) -> tuple[str | None, int]:
        """The store's identity and the first entry of hash version 2 (schema version 2).
        A store whose identity row was deleted has none, and is hash version 2 throughout."""
        row = self.conn.execute(select(s.ledger_meta.c.store_id, s.ledger_meta.c.hash_v2_from)
                                .where(s.ledger_meta.c.id == 1)).first()
        return (None, 1) if row is None else (str(row.store_id), int(row.hash_v2_from))

    def last_entry_at(self) -> str | None:
        cols = s.ledger.c
        return self.conn.execute(select(cols.at).order_by(cols.seq.desc()).limit(1)).scalar()

    def iter_ledger(self, *, chunk: int = 20000, since: str | None = None
                    ) -> Iterator[LedgerEntry]:
        """Every entry in sequence order (``since``: those at or after that stored time),
        read in chunks so memory stays flat."""
        last = -1
        cols = s.ledger.c
        while True:
            query = select(s.ledger).where(cols.seq > last)
            if since is not None:
                query = query.where(cols.at >= since)
            rows = self.conn.execute(query.order_by(cols.seq).limit(chunk)).all()
            if not rows:
                return
            for row in rows:
                yield entry_of(row)
            last = rows[-1].seq

    def iter_ledger_rows(self, *, chunk: int = 20000) -> Iterator[LedgerRow]:
        """Every entry as a plain ``LedgerRow`` tuple, in chunks: what ``ledger.verify_rows``
        hashes without building a record per entry."""
        last = -1
        c = s.ledger.c
        columns = (c.seq, c.at, c.event, c.actor, c.action_id, c.state_before, c.state_after,
                   c.comment, c.details, c.prev_hash, c.hash)
        while True:
            rows = self.conn.execute(
                select(*columns).where(c.seq > last).order_by(c.seq).limit(chunk)).all()
            if not rows:
                return
            for row in rows:
                yield tuple(row)
            last = rows[-1][0]

    def ledger_for(self, action_id: int) -> list[LedgerEntry]:
        cols = s.ledger.c
        rows = self.conn.execute(
            select(s.ledger).where(cols.action_id == action_id).order_by(cols.seq)).all()
        return [entry_of(r) for r in rows]

    # ------------------------------------------------------------ actions
    def next_action_id(self) -> int:
        return int(self.conn.execute(select(func.max(s.actions.c.id))).scalar() or 0) + 1

    def insert_actions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.inserted += len(rows)
        # A batch's rows share a few rules, approvals, reasons and undo specs: each is
        # spelled once (the memo lives for this call only).
        memo: dict[tuple[Any, ...], str] = {}
        for start in range(0, len(rows), CHUNK):
            self._insert_many(s.actions, [_encode(r, memo) for r in rows[start:start + CHUNK]])

    def update_action(self, action_id: int, version: int, changes: Mapping[str, Any]) -> bool:
        """Apply ``changes`` only if the action is still at ``version``; True if it was."""
        cols = s.actions.c
        result = self.conn.execute(
            update(s.actions)
            .where(and_(cols.id == action_id, cols.version == version))
            .values(**_encode(changes), version=version + 1)
        )
        return bool(result.rowcount == 1)

    def get_action(self, action_id: int) -> ActionRecord | None:
        row = self.conn.execute(select(s.actions).where(s.actions.c.id == action_id)).first()
        return None if row is None else action_of(row)

    def get_actions(self, ids: Iterable[int]) -> dict[int, ActionRecord]:
        wanted = list(dict.fromkeys(ids))
        out: dict[int, ActionRecord] = {}
        for start in range(0, len(wanted), 500):
            rows = self.conn.execute(
                select(s.actions).where(s.actions.c.id.in_(wanted[start:start + 500]))).all()
            out.update((r.id, action_of(r)) for r in rows)
        return out

    def pending_for(
        self, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], ActionRecord]:
        """The earliest pending action of each (entity key, action type) pair that has one."""
        wanted = set(pairs)
        types = sorted({t for _, t in wanted})
        keys = sorted({k for k, _ in wanted})
        cols = s.actions.c
        found: list[ActionRecord] = []
        for start in range(0, len(keys), IN_CHUNK):
            # Equality on all three columns of ix_actions_entity, and no ORDER BY: SQLite
            # would otherwise walk every pending action in id order (ix_actions_status_id).
            rows = self.conn.execute(select(s.actions).where(and_(
                cols.entity_key.in_(keys[start:start + IN_CHUNK]), cols.action_type.in_(types),
                cols.status == "pending",
            ))).all()
            found.extend(action_of(r) for r in rows if (r.entity_key, r.action_type) in wanted)
        out: dict[tuple[str, str], ActionRecord] = {}
        for action in sorted(found, key=lambda a: a.id):
            out.setdefault((action.entity_key, action.action_type), action)
        return out

    def submitted_for(
        self, triples: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], ActionRecord]:
        """The earliest action, in any status, holding evidence of each (investigation,
        entity key, action type) that has one: what a resubmission finds already done."""
        wanted = set(triples)
        invs = sorted({i for i, _, _ in wanted})
        a, e = s.actions.c, s.evidence.c
        found: list[tuple[str, ActionRecord]] = []
        for start in range(0, len(invs), IN_CHUNK):
            # ix_evidence_inv finds the investigation's evidence; the join is by primary key.
            rows = self.conn.execute(
                select(e.investigation.label("evidence_investigation"), s.actions)
                .select_from(s.evidence.join(s.actions, a.id == e.action_id))
                .where(e.investigation.in_(invs[start:start + IN_CHUNK]))).all()
            for r in rows:
                if (r.evidence_investigation, r.entity_key, r.action_type) in wanted:
                    data = {k: v for k, v in r._mapping.items() if k != "evidence_investigation"}
                    found.append((r.evidence_investigation, action_from(data)))
        out: dict[tuple[str, str, str], ActionRecord] = {}
        for inv, action in sorted(found, key=lambda x: x[1].id):
            out.setdefault((inv, action.entity_key, action.action_type), action)
        return out

    def recent_approval(
        self, entity_key: str, action_type: str, since: str, exclude: int | None = None
    ) -> ActionRecord | None:
        """The earliest action on this entity and type approved at or after ``since``
        that was (or is being) carried out."""
        cols = s.actions.c
        query = select(s.actions).where(and_(
            cols.entity_key == entity_key, cols.action_type == action_type,
            cols.status.in_(("approved", "running", "completed")), cols.approved_at >= since,
        ))
        if exclude is not None:
            query = query.where(cols.id != exclude)
        row = self.conn.execute(query.order_by(cols.approved_at, cols.id).limit(1)).first()
        return None if row is None else action_of(row)

    def count_automatic(self, rule: str, since: str) -> int:
        cols = s.actions.c
        return int(self.conn.execute(select(func.count()).select_from(s.actions).where(and_(
            cols.primary_rule == rule, cols.approved_at >= since, cols.decided_by == "automation",
            cols.status.in_(("approved", "running", "completed", "failed", "undone",
                             "superseded")),
        ))).scalar() or 0)

    def due(self, column: str, status: str, now: str, limit: int = 1000) -> list[ActionRecord]:
        """Actions in ``status`` whose ``column`` time has come (expiry, revert, stale run)."""
        cols = s.actions.c
        col = cols[column]
        rows = self.conn.execute(select(s.actions).where(and_(
            cols.status == status, col.is_not(None), col <= now,
        )).order_by(col, cols.id).limit(limit)).all()
        return [action_of(r) for r in rows]

    def same_hash(self, entity_hash: str, status: str) -> list[ActionRecord]:
        cols = s.actions.c
        rows = self.conn.execute(select(s.actions).where(and_(
            cols.entity_hash == entity_hash, cols.status == status)).order_by(cols.id)).all()
        return [action_of(r) for r in rows]

    def list_actions(self, f: ActionFilter) -> list[ActionRecord]:
        if f.limit is not None and len(f.statuses) > 1:
            # One ordered query per status, merged: each walks (status, id) or (status,
            # updated_at) in order and stops at the limit, where ``status IN (...)``
            # would sort every action of those statuses first (all open ones: slow at a
            # million).
            found = [a for status in dict.fromkeys(f.statuses)
                     for a in self.list_actions(replace(f, statuses=(status,)))]
            found.sort(key=(lambda a: (a.updated_at, a.id)) if f.by_update else (
                lambda a: a.id), reverse=f.newest_first)
            return found[:f.limit]
        cols = s.actions.c
        query = select(s.actions)
        if f.statuses:
            query = query.where(cols.status.in_(f.statuses))
        if f.investigation is not None:
            # An action belongs to every investigation whose evidence it holds. Its ids
            # come from two indexed lookups (ix_actions_inv_status, ix_evidence_inv): an
            # OR of both conditions would walk every action of the wanted statuses.
            members = select(cols.id).where(cols.investigation == f.investigation).union(
                select(s.evidence.c.action_id).where(
                    s.evidence.c.investigation == f.investigation))
            query = query.where(cols.id.in_(members))
        if f.action_type is not None:
            query = query.where(cols.action_type == f.action_type)
        if f.source is not None:
            query = query.where(cols.source == f.source)
        if f.decided_by is not None:
            query = query.where(cols.decided_by == f.decided_by)
        time_col = cols.updated_at if f.by_update else cols.created_at
        if f.since is not None:
            query = query.where(time_col >= f.since)
        if f.until is not None:
            query = query.where(time_col < f.until)
        if f.after is not None:
            at, last = f.after
            if f.by_update:
                query = query.where(or_(time_col < at, and_(time_col == at, cols.id < last))
                                    if f.newest_first else
                                    or_(time_col > at, and_(time_col == at, cols.id > last)))
            else:
                query = query.where(cols.id < last if f.newest_first else cols.id > last)
        if f.by_update:
            order = [time_col.desc(), cols.id.desc()] if f.newest_first else [time_col, cols.id]
        else:
            order = [cols.id.desc()] if f.newest_first else [cols.id]
        query = query.order_by(*order)
        if f.limit is not None:
            query = query.limit(f.limit)
        return [action_of(r) for r in self.conn.execute(query).all()]

    # ------------------------------------------------------------ evidence, approvals
    def insert_evidence(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.inserted += len(rows)
        for start in range(0, len(rows), CHUNK):
            self._insert_many(s.evidence, [_evidence_row(r) for r in rows[start:start + CHUNK]])

    def evidence_for(self, action_id: int) -> list[dict[str, Any]]:
        cols = s.evidence.c
        rows = self.conn.execute(
            select(s.evidence).where(cols.action_id == action_id).order_by(cols.id)).all()
        return [{**r._mapping, "data": json.loads(r.data)} for r in rows]

    def note_investigations(self, counts: Mapping[str, int], at: str) -> None:
        if not counts:
            return
        cols = s.investigations.c
        known = {r.id: r.evidence_count for r in self.conn.execute(
            select(cols.id, cols.evidence_count).where(cols.id.in_(list(counts)))).all()}
        new = [{"id": k, "first_seen": at, "last_seen": at, "evidence_count": n}
               for k, n in counts.items() if k not in known]
        if new:
            self._insert_many(s.investigations, new)
        seen = [{"key": k, "count": known[k] + n} for k, n in counts.items() if k in known]
        if seen:
            self.conn.execute(
                update(s.investigations).where(cols.id == bindparam("key")).values(
                    last_seen=at, evidence_count=bindparam("count")), seen)

    def investigation_counts(self) -> dict[str, dict[str, int]]:
        """Per investigation: how many of its actions are in each status."""
        out: dict[str, dict[str, int]] = {
            r.id: {} for r in self.conn.execute(select(s.investigations.c.id)).all()}
        a, e = s.actions.c, s.evidence.c
        members = (
            select(e.investigation.label("inv"), e.action_id.label("aid"))
            .union(select(a.investigation.label("inv"), a.id.label("aid")))
            .subquery()
        )
        rows = self.conn.execute(
            select(members.c.inv, a.status, func.count())
            .select_from(members.join(s.actions, a.id == members.c.aid))
            .group_by(members.c.inv, a.status)
        ).all()
        for inv, status, n in rows:
            out.setdefault(inv, {})[status] = int(n)
        return out

    def insert_approval(self, action_id: int, actor: str, comment: str | None, at: str) -> None:
        self.conn.execute(insert(s.approvals).values(
            action_id=action_id, actor=actor, comment=comment, at=at))

    def approvals_for(self, action_id: int) -> list[dict[str, Any]]:
        cols = s.approvals.c
        rows = self.conn.execute(select(cols.actor, cols.comment, cols.at).where(
            cols.action_id == action_id).order_by(cols.id)).all()
        return [dict(r._mapping) for r in rows]

    def approvers_of(self, ids: Iterable[int]) -> dict[int, list[str]]:
        """Who approved each action so far, in order (ids without approvals are absent)."""
        cols = s.approvals.c
        wanted = list(dict.fromkeys(ids))
        out: dict[int, list[str]] = {}
        for start in range(0, len(wanted), IN_CHUNK):
            rows = self.conn.execute(select(cols.action_id, cols.actor).where(
                cols.action_id.in_(wanted[start:start + IN_CHUNK])).order_by(cols.id)).all()
            for action_id, actor in rows:
                out.setdefault(action_id, []).append(actor)
        return out

    def undone_by(self, ids: Iterable[int]) -> dict[int, tuple[str, str]]:
        """Per action: the actor and event (``undone`` or ``reverted``) of its last undo."""
        cols = s.ledger.c
        wanted = list(dict.fromkeys(ids))
        out: dict[int, tuple[str, str]] = {}
        for start in range(0, len(wanted), IN_CHUNK):
            rows = self.conn.execute(select(cols.action_id, cols.actor, cols.event).where(and_(
                cols.action_id.in_(wanted[start:start + IN_CHUNK]),
                cols.event.in_(("undone", "reverted")))).order_by(cols.seq)).all()
            out.update((action_id, (actor, event)) for action_id, actor, event in rows)
        return out

    # ------------------------------------------------------------ record executor
    def get_record(self, key: str) -> dict[str, Any] | None:
        cols = s.executor_records.c
        row = self.conn.execute(select(cols.result, cols.at).where(
            cols.idempotency_key == key)).first()
        return None if row is None else {"at": row.at, "result": json.loads(row.result)}

    def put_record(self, key: str, action_id: int, operation: str, at: str,
                   result: Mapping[str, Any]) -> None:
        self.conn.execute(insert(s.executor_records).values(
            idempotency_key=key, action_id=action_id, operation=operation, at=at,
            result=_dumps(dict(result))))

    # ------------------------------------------------------------ settings
    def get_setting(self, key: str) -> dict[str, Any] | None:
        """``{"value", "updated_at", "updated_by"}`` of a store setting, or None."""
        cols = s.settings.c
        row = self.conn.execute(select(cols.value, cols.updated_at, cols.updated_by).where(
            cols.key == key)).first()
        return None if row is None else {"value": json.loads(row.value),
                                         "updated_at": row.updated_at,
                                         "updated_by": row.updated_by}

    def store_entries(self) -> tuple[dict[str, Any] | None, bool]:
        """The details of the last ``configured`` ledger entry (None: no push yet), and
        whether an ``initialized`` (demo store) entry exists."""
        cols = s.ledger.c
        row = self.conn.execute(select(cols.seq, cols.details).where(
            cols.event == "configured").order_by(cols.seq.desc()).limit(1)).first()
        demo = self.conn.execute(select(cols.seq).where(
            cols.event == "initialized").limit(1)).first()
        configured = None if row is None else {"seq": row.seq, **json.loads(row.details)}
        return configured, demo is not None

    def count_by_type(self, status: str) -> dict[str, int]:
        """How many actions of each type have ``status`` (the server's metrics)."""
        cols = s.actions.c
        rows = self.conn.execute(select(cols.action_type, func.count()).where(
            cols.status == status).group_by(cols.action_type)).all()
        return {str(r[0]): int(r[1]) for r in rows}

    def count_by_type_upto(self, status: str, cap: int) -> dict[str, int]:
        """Like ``count_by_type``, but each count stops at ``cap + 1`` (more than ``cap``):
        an exact count walks every matching index entry (a tenth of a second per million
        on SQLite), this walks at most ``cap + 1`` per type. The types present come from a
        loose scan of ix_actions_type_status (one index seek per type)."""
        a = s.actions.c
        types = select(func.min(a.action_type).label("t")).cte("types", recursive=True)
        types = types.union_all(select(
            select(func.min(a.action_type)).where(a.action_type > types.c.t).scalar_subquery()
        ).where(types.c.t.is_not(None)))
        found = [str(r[0]) for r in self.conn.execute(
            select(types.c.t).where(types.c.t.is_not(None))).all()]
        out = {}
        for action_type in found:
            some = select(a.id).where(a.action_type == action_type,
                                      a.status == status).limit(cap + 1).subquery()
            n = int(self.conn.execute(select(func.count()).select_from(some)).scalar_one())
            if n:
                out[action_type] = n
        return out

    def put_setting(self, key: str, value: Any, at: str, actor: str) -> None:
        """Set a store setting (write transactions only: the caller logs the change)."""
        cols = s.settings.c
        values = {"value": _dumps(value), "updated_at": at, "updated_by": actor}
        if self.conn.execute(update(s.settings).where(cols.key == key).values(
                **values)).rowcount == 0:
            self.conn.execute(insert(s.settings).values(key=key, **values))


def _evidence_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """An evidence row with its document as stored text: ``data_json`` when the caller
    spelled it already (``ledger.evidence_spelled``: the same text), else spelled here."""
    out = {k: v for k, v in row.items() if k != "data_json"}
    text = row.get("data_json")
    out["data"] = text if isinstance(text, str) else _dumps(row["data"])
    return out


def _encode(row: Mapping[str, Any],
            memo: dict[tuple[Any, ...], str] | None = None) -> dict[str, Any]:
    out = dict(row)
    for name in _JSON_COLUMNS:
        if name in out and out[name] is not None:
            value = out[name]
            key = _memo_key(value) if memo is not None else None
            text = memo.get(key) if memo is not None and key is not None else None
            if text is None:
                text = _dumps(list(value) if isinstance(value, tuple) else value)
                if memo is not None and key is not None:
                    memo[key] = text
            out[name] = text
    if "rules" in row and "primary_rule" not in row:
        rules = row["rules"]
        out["primary_rule"] = rules[0] if rules else ""
    return out
