"""Actions as rows: the table and CSV forms that ``airgate actions|history`` print and
the server's history export serves, with cells a spreadsheet never runs as formulas."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

from airgate.render import escape
from airgate.runtime.records import ActionRecord

# What makes a spreadsheet read a cell as a formula (OWASP CSV injection), the fullwidth
# forms included, which spreadsheets fold to ASCII.
_FORMULA_START = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value: object) -> str:
    """A cell safe for a terminal and a spreadsheet: control characters escaped as in
    tables, and a ' before a cell a spreadsheet would run as a formula: one starting
    with =, +, -, @ (or their fullwidth forms), also after leading spaces, or with a tab
    or CR."""
    text = "" if value is None else value if isinstance(value, str) else str(value)
    formula = text.startswith(("\t", "\r")) or text.lstrip().startswith(_FORMULA_START)
    text = escape(text)
    return "'" + text if formula else text


def short_time(stored: str | None) -> str:
    """``2024-05-01T12:00:00.000000Z`` -> ``2024-05-01 12:00:00Z`` for tables."""
    if not stored:
        return ""
    return stored[:10] + " " + stored[11:19] + "Z"


ACTION_HEADERS = ("id", "status", "investigation", "action", "entity type", "entity", "source",
                  "created", "note")


def action_note(a: ActionRecord, now: str | None = None) -> str:
    """The table's note; ``now`` (stored spelling) marks a pending action past its expiry,
    which a reader shows but never expires itself (``airgate tick`` or any writer does)."""
    if a.status == "pending":
        overdue = now is not None and a.expires_at is not None and a.expires_at <= now
        parts = [f"expired {short_time(a.expires_at)}, not yet recorded: airgate tick records"
                 " it" if overdue else f"expires {short_time(a.expires_at)}"]
        quorum = a.approval.get("quorum", 1)
        if quorum and int(quorum) > 1:
            parts.append(f"quorum {quorum}")
        if a.reason:
            parts.append(a.reason)
        return "; ".join(parts)
    if a.status == "approved":  # execution: worker
        return "waiting for a worker"
    if a.status == "completed" and a.revert_at:
        return f"reverts {short_time(a.revert_at)}"
    if a.status == "deduplicated" and a.link_id:
        return f"duplicate of {a.link_id}"
    if a.status == "superseded" and a.superseded_by:
        return f"superseded by {a.superseded_by}"
    if a.link_id and a.status == "pending":
        return f"changed from {a.link_id}"
    return a.reason or a.error or ""


def action_row(a: ActionRecord, now: str | None = None) -> tuple[object, ...]:
    return (a.id, a.status, a.investigation, a.action_type, a.entity_type, a.entity_name,
            a.source, short_time(a.created_at), action_note(a, now))


HISTORY_HEADERS = ("id", "status", "investigation", "action", "entity type", "entity", "source",
                   "decided by", "updated", "note")


def history_row(a: ActionRecord, now: str | None = None) -> tuple[object, ...]:
    return (a.id, a.status, a.investigation, a.action_type, a.entity_type, a.entity_name,
            a.source, a.decided_by or "", short_time(a.updated_at), action_note(a, now))




def csv_text(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """CSV with a header row, every cell through :func:`csv_cell`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow([csv_cell(c) for c in row])
    return out.getvalue()


def history_csv(actions: Sequence[ActionRecord], undone_by: Mapping[int, str],
                now: str | None = None) -> str:
    """The CSV ``airgate history --format csv`` prints: the history columns and who undid
    each undone action."""
    return csv_text((*HISTORY_HEADERS, "undone by"),
                    ((*history_row(a, now), undone_by.get(a.id, "")) for a in actions))
