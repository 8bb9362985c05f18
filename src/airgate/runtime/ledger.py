"""The append-only, hash-chained ledger: how entries are chained, how the chain is checked,
and what the ledger says each action's state must be.

Each entry's hash is the SHA-256 of the canonical JSON of its content, which
includes its sequence number and the previous entry's hash. Changing any
stored field breaks that entry's hash; deleting or reordering entries breaks
the sequence or the link to the previous hash; cutting entries off the end
disagrees with the head the store keeps beside the ledger. The head lives in
the same database, so a writer of the store can rewrite the chain and the head
together: only signed checkpoints kept outside the store (``checkpoint.py``)
bind the chain to what it was.

Two hash versions: rows written before schema version 2 (version 1) spell
their text with UTF-8 kept; rows from the store's ``hash_v2_from`` on (version
2) spell everything in ASCII JSON and hash ``"hash_version": 2`` with the rest,
so a version-2 row never verifies as a version-1 one. Either way the stored
details text must be exactly the canonical spelling of its value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

from airgate.runtime.records import ActionRecord, LedgerEntry, LedgerEvent

GENESIS = "0" * 64
HASH_VERSION = 2  # what new rows use


# ``json.dumps`` with options builds a new encoder per call; a submit batch spells tens
# of thousands of small values, so each spelling keeps one (its ``encode`` is what
# ``json.dumps`` calls: the same text, and it holds no state between calls).
_UTF8 = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                         allow_nan=False)
_ASCII = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False)


def canonical_json(value: Any) -> str:
    """Version 1's spelling: sorted keys, no spaces, UTF-8 kept."""
    return _UTF8.encode(value)


def canonical_text(value: Any) -> str:
    """Version 2's one spelling of a value: sorted keys, no spaces, ASCII only (every other
    character escaped as ``\\uXXXX``, so a lone surrogate or NUL is text, never an error)."""
    return _ASCII.encode(value)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_loads(text: str) -> Any:
    """Read JSON back refusing what has no single meaning: duplicate keys, NaN, Infinity."""
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def is_canonical(text: str, version: int = HASH_VERSION) -> bool:
    """True when ``text`` is exactly the one spelling of the value it holds."""
    try:
        value = strict_loads(text)
        spelled = canonical_text(value) if version >= 2 else canonical_json(value)
    except (ValueError, TypeError, RecursionError):
        return False
    return spelled == text


def entry_hash(content: dict[str, Any]) -> str:
    """Version 1's hash of an entry's content (every field but the hash)."""
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def entry_hash_v2(content: dict[str, Any]) -> str:
    return hashlib.sha256(
        canonical_text({**content, "hash_version": 2}).encode("ascii")).hexdigest()


def evidence_digest(data: Any) -> str:
    """The hash of one evidence document as the ledger binds it."""
    return hashlib.sha256(canonical_text(data).encode("ascii")).hexdigest()


def evidence_spelled(data: Any) -> tuple[str, str]:
    """One evidence document's stored text (``canonical_json``: UTF-8 kept) and its
    ``evidence_digest``, from one encoding where they agree.

    The two spellings differ only in how characters outside printable ASCII are written
    (kept, or escaped as ``\\uXXXX``; DEL is the one such character in ASCII): a text
    holding none of them is both, and is hashed as it is. Any other is spelled again.
    """
    text = canonical_json(data)
    if text.isascii() and "\x7f" not in text:
        return text, hashlib.sha256(text.encode("ascii")).hexdigest()
    return text, evidence_digest(data)


# One stored ledger row, in column order: seq, at, event, actor, action_id,
# state_before, state_after, comment, details (canonical JSON text), prev_hash, hash.
LedgerRow = tuple[int, str, str, str, int | None, str | None, str | None, str | None, str, str,
                  str]


def _text(value: str | None) -> str:
    return "null" if value is None else str(encode_basestring(value))


def _ascii(value: str | None) -> str:
    return "null" if value is None else str(encode_basestring_ascii(value))


def row_hash(seq: int, at: str, event: str, actor: str, action_id: int | None,
             state_before: str | None, state_after: str | None, comment: str | None,
             details_json: str, prev_hash: str) -> str:
    """Version 1's ``entry_hash`` of an entry given its details as canonical JSON text,
    without building the content dict (the same bytes, the details text spliced in)."""
    text = (
        f'{{"action_id":{"null" if action_id is None else int(action_id)},'
        f'"actor":{_text(actor)},"at":{_text(at)},"comment":{_text(comment)},'
        f'"details":{details_json},"event":{_text(event)},"prev_hash":{_text(prev_hash)},'
        f'"seq":{int(seq)},"state_after":{_text(state_after)},'
        f'"state_before":{_text(state_before)}}}'
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def row_hash_v2(seq: int, at: str, event: str, actor: str, action_id: int | None,
                state_before: str | None, state_after: str | None, comment: str | None,
                details_text: str, prev_hash: str) -> str:
    """``entry_hash_v2`` from a row, the details given as ``canonical_text``."""
    text = (
        f'{{"action_id":{"null" if action_id is None else int(action_id)},'
        f'"actor":{_ascii(actor)},"at":{_ascii(at)},"comment":{_ascii(comment)},'
        f'"details":{details_text},"event":{_ascii(event)},"hash_version":2,'
        f'"prev_hash":{_ascii(prev_hash)},"seq":{int(seq)},'
        f'"state_after":{_ascii(state_after)},"state_before":{_ascii(state_before)}}}'
    )
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def chain(
    events: Sequence[LedgerEvent], *, head_seq: int, head_hash: str, at: str
) -> list[LedgerEntry]:
    """Turn events into (version 2) entries that continue the chain after the head."""
    out: list[LedgerEntry] = []
    seq, prev = head_seq, head_hash
    for ev in events:
        seq += 1
        # Round-trip details through JSON so what is hashed is exactly what is stored.
        details = json.loads(canonical_text(dict(ev.details)))
        draft = LedgerEntry(seq, at, ev.event, ev.actor, ev.action_id, ev.state_before,
                            ev.state_after, ev.comment, details, prev, "")
        digest = entry_hash_v2(draft.content())
        out.append(LedgerEntry(**{**draft.__dict__, "hash": digest}))
        prev = digest
    return out


@dataclass(frozen=True)
class Mark:
    """A point the chain must pass through: entry ``seq`` had hash ``hash`` (a checkpoint)."""

    seq: int
    hash: str
    name: str = "a checkpoint"


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int
    bad_seq: int | None = None
    message: str = ""


def verify(
    entries: Iterable[LedgerEntry], *, head: tuple[int, str] | None = None, v2_from: int = 1,
    marks: Sequence[Mark] = (),
) -> VerifyResult:
    """Walk the chain in sequence order; report the first entry changed, deleted or reordered.

    ``entries`` is streamed (the store reads them in chunks), so memory stays
    flat however long the ledger is. ``head`` is the store's record of the last
    entry's sequence number and hash, which catches entries cut off the end.
    """
    return verify_rows(
        ((e.seq, e.at, e.event, e.actor, e.action_id, e.state_before, e.state_after, e.comment,
          (canonical_text if e.seq >= v2_from else canonical_json)(dict(e.details)),
          e.prev_hash, e.hash) for e in entries),
        head=head, v2_from=v2_from, marks=marks)


def verify_rows(rows: Iterable[LedgerRow], *, head: tuple[int, str] | None = None,
                v2_from: int = 1, marks: Sequence[Mark] = ()) -> VerifyResult:
    """``verify`` over stored rows as tuples (``LedgerRow``): what ``ledger verify`` streams,
    since building a record per entry would cost more than hashing it. Rows from
    ``v2_from`` on are hash version 2. ``marks`` (signed checkpoints) are hashes the chain
    must hold at their sequence numbers: the one proof a rewrite of the store cannot forge."""
    at_seq: dict[int, list[Mark]] = {}
    for mark in marks:
        at_seq.setdefault(mark.seq, []).append(mark)
    expected_seq, prev = 1, GENESIS
    count = 0
    for row in rows:
        seq = row[0]
        if seq != expected_seq:
            if seq > expected_seq:
                what = f"entry {expected_seq} is missing (deleted?): the next entry is {seq}"
            else:
                what = f"entry {seq} appears out of order after entry {expected_seq - 1}"
            return VerifyResult(False, count, expected_seq, what)
        if row[9] != prev:
            return VerifyResult(
                False, count, seq,
                f"entry {seq} does not link to entry {seq - 1}"
                " (an entry before it was changed, deleted or reordered)",
            )
        version = 2 if seq >= v2_from else 1
        if not is_canonical(row[8], version):
            return VerifyResult(
                False, count, seq,
                f"entry {seq} was changed: its details are not in their one canonical spelling"
                " (respelled, reordered, or holding a duplicate key)")
        digest = (row_hash_v2 if version == 2 else row_hash)(*row[:10])
        if digest != row[10]:
            return VerifyResult(
                False, count, seq, f"entry {seq} was changed: its content does not match its hash",
            )
        for mark in at_seq.get(seq, ()):
            if mark.hash != row[10]:
                return VerifyResult(
                    False, count, seq,
                    f"entry {seq} is not the entry {mark.name} signed: the ledger was"
                    " rewritten up to it (entries changed, inserted or deleted and rechained)")
        prev = row[10]
        expected_seq += 1
        count += 1
    if head is not None:
        head_seq, head_hash = head
        if head_seq != count or (count and head_hash != prev):
            return VerifyResult(
                False, count, count + 1 if head_seq > count else head_seq,
                f"the ledger ends at entry {count} but its head records entry {head_seq}"
                " (entries deleted at the end, or the head was changed)",
            )
    beyond = [m for m in marks if m.seq > count]
    if beyond:
        last = max(beyond, key=lambda m: m.seq)
        return VerifyResult(
            False, count, count + 1,
            f"the ledger ends at entry {count} but {last.name} signed entry {last.seq}"
            " (entries cut off the end, or the ledger emptied and its head reset)")
    return VerifyResult(True, count, None, f"{count} entries verified")


# ---------------------------------------------------------------- the ledgered state
# What execution depends on, bound into the entries at the time it was decided. The
# actions and approvals tables are a copy kept for fast queries; where they differ from
# the ledger, the ledger wins and the difference is reported.
BOUND = ("action_type", "entity_key", "expires_at")


@dataclass
class ActionLedger:
    """One action's state as its ledger entries tell it (``fold``)."""

    action_id: int
    status: str | None = None
    approval: dict[str, Any] | None = None
    approvers: list[tuple[str, str | None]] = field(default_factory=list)
    automatic: bool = False
    run_key: str | None = None
    undo_requested: str | None = None  # who asked a worker to undo it (``requested``)
    evidence: list[str] | None = None  # None: written before evidence was bound
    bound: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None

    @property
    def quorum(self) -> int:
        return int((self.approval or {}).get("quorum", 1) or 1)

    def approved(self) -> bool:
        """Approved automatically, or by as many distinct people as the ledgered quorum."""
        return self.automatic or len({a for a, _ in self.approvers}) >= self.quorum


def fold(action_id: int, entries: Iterable[LedgerEntry]) -> ActionLedger:
    """Replay one action's entries (in sequence order) into the state they describe."""
    state = ActionLedger(action_id)
    for e in entries:
        if e.event == "refused":
            continue  # records an attempt, and the state the store showed then: no change
        d = e.details
        if state.problem is None:
            if (e.event == "created") != (state.status is None):
                state.problem = (f"entry {e.seq} ({e.event}) does not follow the action's"
                                 " history (a created entry must come first, and only once)")
            elif e.state_before is not None and e.state_before != state.status:
                state.problem = (f"entry {e.seq} moves it from {e.state_before}, but the"
                                 f" ledger had left it {state.status}")
        if e.event == "created":
            approval = d.get("approval")
            state.approval = dict(approval) if isinstance(approval, Mapping) else None
            state.bound = {k: d[k] for k in BOUND if k in d}
            if "evidence" in d:
                state.evidence = list(d["evidence"])
        elif e.event == "merged" and state.evidence is not None:
            if "evidence" in d:
                state.evidence.append(d["evidence"])
            elif state.problem is None:
                state.problem = f"merged entry {e.seq} carries no evidence hash"
        elif e.event == "approved":
            if d.get("automatic"):
                state.automatic = True
            else:
                state.approvers.append((e.actor, e.comment))
        elif e.event == "started":
            state.run_key = d.get("idempotency_key")
            state.undo_requested = None
        elif e.event == "requested" and d.get("operation") == "undo":
            state.undo_requested = e.actor
        if e.state_after is not None:
            state.status = e.state_after
    return state


def _spell(value: Any) -> str:
    return canonical_text(value) if not isinstance(value, str) else value


def differences(state: ActionLedger, *, status: str, approval: Mapping[str, Any],
                fields: Mapping[str, Any], run_key: str | None = None,
                approvals: Sequence[tuple[str, str | None]] | None = None,
                evidence: Sequence[str] | None = None) -> list[str]:
    """Where an action as stored differs from its ledger, one sentence each (empty: none).

    ``approvals`` and ``evidence`` (hashes) are compared only when given."""
    if state.status is None:
        return ["it has no created entry in the ledger"]
    out = [state.problem] if state.problem else []
    if status != state.status:
        out.append(f"its status is {status} in the store but {state.status} in the ledger")
    ledgered = state.approval or {}
    for key in sorted(set(approval) | set(ledgered)):
        if approval.get(key) != ledgered.get(key):
            out.append(f"its approval {key} is {_spell(approval.get(key))} in the store but"
                       f" {_spell(ledgered.get(key))} in the ledger")
    for key, value in state.bound.items():
        if key == "expires_at" and not status == state.status == "pending":
            continue  # only a pending action keeps its expiry (a status change shows above)
        if fields.get(key) != value:
            out.append(f"its {key} is {_spell(fields.get(key))} in the store but"
                       f" {_spell(value)} in the ledger")
    if status == "running" and state.status == "running" and run_key != state.run_key:
        out.append(f"its run key is {run_key} in the store but {state.run_key} in the ledger")
    if approvals is not None and sorted(approvals, key=str) != sorted(state.approvers, key=str):
        stored = ", ".join(sorted(a for a, _ in approvals)) or "none"
        held = ", ".join(sorted(a for a, _ in state.approvers)) or "none"
        out.append(f"its approvals in the store ({stored}) are not those in the ledger ({held})")
    if evidence is not None and state.evidence is not None and (
            sorted(evidence) != sorted(state.evidence)):
        out.append(f"its evidence in the store ({len(evidence)} documents) does not match the"
                   f" {len(state.evidence)} the ledger holds the hashes of (edited, added or"
                   " deleted)")
    return out


def stored_problem(state: ActionLedger, a: ActionRecord) -> str | None:
    """Why a stored action cannot be trusted to act on: where it differs from its ledger."""
    found = differences(state, status=a.status, approval=a.approval, run_key=a.run_key,
                        fields={"action_type": a.action_type, "entity_key": a.entity_key,
                                "expires_at": a.expires_at})
    if not found:
        return None
    return (f"the store does not match the ledger ({'; '.join(found)}): it was changed outside"
            " airgate (run airgate ledger verify)")
