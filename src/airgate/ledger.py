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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .records import LedgerEntry, LedgerEvent

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def entry_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


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
    expected_seq, prev = 1, GENESIS
    count = 0
    for entry in _iter(entries):
        if entry.seq != expected_seq:
            if entry.seq > expected_seq:
                what = (f"entry {expected_seq} is missing (deleted?): the next entry is "
                        f"{entry.seq}")
            else:
                what = f"entry {entry.seq} appears out of order after entry {expected_seq - 1}"
            return VerifyResult(False, count, expected_seq, what)
        if entry.prev_hash != prev:
            return VerifyResult(
                False, count, entry.seq,
                f"entry {entry.seq} does not link to entry {entry.seq - 1}"
                " (an entry before it was changed, deleted or reordered)",
            )
        if entry_hash(entry.content()) != entry.hash:
            return VerifyResult(
                False, count, entry.seq,
                f"entry {entry.seq} was changed: its content does not match its hash",
            )
        prev = entry.hash
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


def _iter(entries: Iterable[LedgerEntry]) -> Iterator[LedgerEntry]:
    yield from entries
