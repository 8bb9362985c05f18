"""The append-only, hash-chained ledger: how entries are chained and how the chain is checked.

Each entry's hash is the SHA-256 of the canonical JSON of its content, which
includes its sequence number and the previous entry's hash. Changing any
stored field breaks that entry's hash; deleting or reordering entries breaks
the sequence or the link to the previous hash; cutting entries off the end
disagrees with the head the store keeps beside the ledger.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from airgate.runtime.records import LedgerEntry, LedgerEvent

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def entry_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


# One stored ledger row, in column order: seq, at, event, actor, action_id,
# state_before, state_after, comment, details (canonical JSON text), prev_hash, hash.
LedgerRow = tuple[int, str, str, str, int | None, str | None, str | None, str | None, str, str,
                  str]


def _text(value: str | None) -> str:
    return "null" if value is None else str(encode_basestring(value))


def row_hash(seq: int, at: str, event: str, actor: str, action_id: int | None,
             state_before: str | None, state_after: str | None, comment: str | None,
             details_json: str, prev_hash: str) -> str:
    """``entry_hash`` of an entry given its details as canonical JSON text, without building
    the content dict: the same bytes as ``canonical_json(content)`` (keys in sorted order,
    the details text spliced in), so writing and verifying a long ledger stays cheap."""
    text = (
        f'{{"action_id":{"null" if action_id is None else int(action_id)},'
        f'"actor":{_text(actor)},"at":{_text(at)},"comment":{_text(comment)},'
        f'"details":{details_json},"event":{_text(event)},"prev_hash":{_text(prev_hash)},'
        f'"seq":{int(seq)},"state_after":{_text(state_after)},'
        f'"state_before":{_text(state_before)}}}'
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chain(
    events: Sequence[LedgerEvent], *, head_seq: int, head_hash: str, at: str
) -> list[LedgerEntry]:
    """Turn events into entries that continue the chain after ``head_seq``/``head_hash``."""
    out: list[LedgerEntry] = []
    seq, prev = head_seq, head_hash
    for ev in events:
        seq += 1
        # Round-trip details through JSON so what is hashed is exactly what is stored.
        details = json.loads(canonical_json(dict(ev.details)))
        draft = LedgerEntry(seq, at, ev.event, ev.actor, ev.action_id, ev.state_before,
                            ev.state_after, ev.comment, details, prev, "")
        digest = entry_hash(draft.content())
        out.append(LedgerEntry(**{**draft.__dict__, "hash": digest}))
        prev = digest
    return out


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int
    bad_seq: int | None = None
    message: str = ""


def verify(
    entries: Iterable[LedgerEntry], *, head: tuple[int, str] | None = None
) -> VerifyResult:
    """Walk the chain in sequence order; report the first entry changed, deleted or reordered.

    ``entries`` is streamed (the store reads them in chunks), so memory stays
    flat however long the ledger is. ``head`` is the store's record of the last
    entry's sequence number and hash, which catches entries cut off the end.
    """
    return verify_rows(
        ((e.seq, e.at, e.event, e.actor, e.action_id, e.state_before, e.state_after, e.comment,
          canonical_json(dict(e.details)), e.prev_hash, e.hash) for e in entries),
        head=head)


def verify_rows(rows: Iterable[LedgerRow], *, head: tuple[int, str] | None = None) -> VerifyResult:
    """``verify`` over stored rows as tuples (``LedgerRow``): what ``ledger verify`` streams,
    since building a record per entry would cost more than hashing it."""
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
        if row_hash(*row[:10]) != row[10] and not _canonical_match(row):
            return VerifyResult(
                False, count, seq, f"entry {seq} was changed: its content does not match its hash",
            )
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
    return VerifyResult(True, count, None, f"{count} entries verified")


def _canonical_match(row: LedgerRow) -> bool:
    # The hash covers the details' value, not their spelling: stored text that is not in
    # canonical form (written by hand, or by another JSON encoder) is re-spelled first.
    try:
        details = canonical_json(json.loads(row[8]))
    except ValueError:
        return False
    return details != row[8] and row_hash(*row[:8], details, row[9]) == row[10]
