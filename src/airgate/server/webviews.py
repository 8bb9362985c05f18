"""What the web Action Center shows: filters read from a query string, table rows, the
action panel, an investigation, and the CSV of a table.

Plain data for the templates (``web.py`` renders them): every value that came
from evidence or from a person stays a string here and is escaped by the
templates, never marked safe.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from airgate.catalog import Catalog
from airgate.errors import UsageError
from airgate.runtime.export import short_time
from airgate.runtime.records import OPEN, PENDING, SETTLED, ActionFilter, ActionRecord

PAGE = 50  # rows of a first page; "show more" doubles it
MAX_ROWS = 5000  # one page never reads more (the CLI's --limit 0 is for exports of all)
SOURCES = ("automatedInvestigation", "antivirus", "manual")
FILTER_KEYS = ("status", "action_type", "source", "investigation", "decided_by", "since", "until",
               "limit")


@dataclass(frozen=True)
class Filters:
    """The filters of a tab as typed (kept to refill the form) and the store filter."""

    tab: str
    raw: Mapping[str, str]
    flt: ActionFilter
    limit: int

    def query(self, **changes: object) -> str:
        """The query string of these filters (for links: CSV, show more, the panel)."""
        values = {**self.raw, **{k: str(v) for k, v in changes.items()}}
        return urlencode([(k, values[k]) for k in FILTER_KEYS if values.get(k)])


def _time(text: str, now: dt.datetime, name: str) -> str | None:
    from airgate.policy.durations import parse_duration
    from airgate.runtime.clock import EARLIEST, format_time, parse_time

    text = text.strip()
    if not text:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError:
        try:
            return format_time(parse_time(text))
        except UsageError as exc:
            raise UsageError(f"{name}: {exc.message}") from None
    if seconds > (now - EARLIEST).total_seconds():
        raise UsageError(f"{name}: {text} reaches back before {EARLIEST:%Y-%m-%d}")
    return format_time(now - dt.timedelta(seconds=seconds))


def read_filters(tab: str, params: Mapping[str, str], now: dt.datetime) -> Filters:
    """The filters of the Pending or History tab from a query string; UsageError (a 400)
    for a value the form could not have sent."""
    from airgate.runtime.config import normalize_actor

    raw = {k: str(params.get(k, "")).strip()[:200] for k in FILTER_KEYS}
    status = raw["status"]
    if tab == "pending":
        statuses: tuple[str, ...] = (PENDING,)
        raw["status"] = raw["decided_by"] = ""  # nobody decided a pending action yet
    elif status:
        if status not in SETTLED + OPEN:
            raise UsageError(f"unknown status {status!r}")
        statuses = (status,)
    else:
        statuses = SETTLED
    if raw["source"] and raw["source"] not in SOURCES:
        raise UsageError(f"unknown source {raw['source']!r}: one of {', '.join(SOURCES)}")
    limit = PAGE
    if raw["limit"]:
        if not raw["limit"].isdigit() or not 1 <= int(raw["limit"]) <= MAX_ROWS:
            raise UsageError(f"limit must be a number from 1 to {MAX_ROWS}")
        limit = int(raw["limit"])
    since = _time(raw["since"], now, "from")
    until = _time(raw["until"], now, "to")
    history = tab == "history"
    flt = ActionFilter(
        statuses=statuses, investigation=raw["investigation"] or None,
        action_type=raw["action_type"] or None, source=raw["source"] or None, since=since,
        until=until, decided_by=normalize_actor(raw["decided_by"]) or None,
        limit=limit + 1,  # one more: are there more?
        newest_first=True, by_update=history)
    return Filters(tab, raw, flt, limit)


# ---------------------------------------------------------------- rows
def action_name(catalog: Catalog, action_type: str) -> str:
    """The catalog's display name of an action type (the type itself when unknown)."""
    spec = catalog.get(action_type)
    return spec.display_name if spec is not None else action_type


def note(a: ActionRecord, now: str, undone_by: Mapping[int, str]) -> str:
    """What the Note column says (the CLI's notes, in words for a reader)."""
    parts: list[str] = []
    if a.status == PENDING:
        if a.expires_at and a.expires_at <= now:
            parts.append(f"expired {short_time(a.expires_at)}, recorded by the next change")
        elif a.expires_at:
            parts.append(f"expires {short_time(a.expires_at)}")
        quorum = int(a.approval.get("quorum", 1) or 1)
        if quorum > 1:
            parts.append(f"quorum {quorum}")
        if a.link_id:
            parts.append(f"changed from action {a.link_id}")
    if a.id in undone_by:
        parts.append(f"undone by {undone_by[a.id]}")
    if a.status == "completed" and a.revert_at:
        parts.append(f"reverts {short_time(a.revert_at)}")
    if a.status == "deduplicated" and a.link_id:
        parts.append(f"duplicate of action {a.link_id}")
    if a.status == "superseded" and a.superseded_by:
        parts.append(f"superseded by action {a.superseded_by}")
    if a.reason:
        parts.append(a.reason)
    if a.error:
        parts.append(a.error)
    return "; ".join(parts)


def rows(actions: Sequence[ActionRecord], catalog: Catalog, now: str,
         undone_by: Mapping[int, str]) -> list[dict[str, Any]]:
    """The table's rows of ``actions`` (``undone_by``: who undid each undone one)."""
    return [{
        "id": a.id, "status": a.status, "investigation": a.investigation,
        "action_type": a.action_type, "action_name": action_name(catalog, a.action_type),
        "entity_type": a.entity_type, "entity_name": a.entity_name, "source": a.source,
        "created": short_time(a.created_at), "updated": short_time(a.updated_at),
        "decided_by": a.decided_by or "", "rules": list(a.rules),
        "note": note(a, now, undone_by),
    } for a in actions]


COUNT_CAP = 10_000  # live counts are exact up to here; beyond, "10,000+" (bounded time)


def live_counts(counts: Mapping[str, int], catalog: Catalog) -> dict[str, Any]:
    """``Queue.pending_counts(COUNT_CAP)`` for the page and for ``/web/counts``."""
    def shown(n: int, more: bool) -> str:
        return f"{n:,}+" if more else f"{n:,}"

    by_type: list[dict[str, Any]] = [
        {"type": t, "name": action_name(catalog, t), "n": min(n, COUNT_CAP),
         "more": n > COUNT_CAP, "shown": shown(min(n, COUNT_CAP), n > COUNT_CAP)}
        for t, n in sorted(counts.items())]
    total = sum(int(c["n"]) for c in by_type)
    more = any(bool(c["more"]) for c in by_type)
    return {"total": total, "more": more, "shown": shown(total, more), "by_type": by_type}


def to_csv(tab: str, actions: Sequence[ActionRecord], undone_by: Mapping[int, str],
           now: str) -> str:
    """The CSV of a tab: ``airgate actions --format csv``'s columns for Pending,
    ``airgate history --format csv``'s for History (the library's, formula-safe)."""
    from airgate.runtime.export import ACTION_HEADERS, action_row, csv_text, history_csv

    if tab == "history":
        return history_csv(actions, undone_by, now)
    return csv_text(ACTION_HEADERS, (action_row(a, now) for a in actions))


# ---------------------------------------------------------------- the action panel
def _flatten(value: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    """Evidence fields as (dotted path, text) pairs, the way policy conditions name them."""
    if isinstance(value, Mapping) and depth < 6:
        out: list[tuple[str, str]] = []
        for key in value:
            out += _flatten(value[key], f"{prefix}.{key}" if prefix else str(key), depth + 1)
        return out
    if isinstance(value, str):
        return [(prefix, value)]
    return [(prefix, json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))]


def evidence_view(items: Iterable[Mapping[str, Any]],
                  investigation: str | None = None) -> list[dict[str, Any]]:
    """Stored evidence for the page; only ``investigation``'s when given."""
    out = []
    for e in items:
        if investigation is not None and e["investigation"] != investigation:
            continue
        data = e["data"] if isinstance(e["data"], Mapping) else {"value": e["data"]}
        fields = data.get("fields")
        out.append({
            "investigation": e["investigation"], "added_at": short_time(e["added_at"]),
            "submitted_by": e["submitted_by"], "verdict": str(data.get("verdict", "")),
            "entity_type": str(data.get("entity_type", "")),
            "name": str(data.get("name", "")),
            "fields": _flatten(fields) if isinstance(fields, Mapping) and fields else
            _flatten({k: v for k, v in data.items() if k != "fields"}),
        })
    return out


def approval_text(approval: Mapping[str, Any]) -> str:
    """An approval setting in words: automatic, or by which roles with which quorum."""
    if not approval.get("required"):
        return "automatic"
    text = f"by {', '.join(approval.get('roles', ()))} (quorum {approval.get('quorum', 1)})"
    return text + ("; a comment is required" if approval.get("require_comment") else "")


def panel(story: Mapping[str, Any], catalog: Catalog, now: str, *,
          role_problem: str | None, explanation: list[str] | None,
          explain_note: str | None) -> dict[str, Any]:
    """The action panel of ``Queue.show``'s story."""
    a = story["action"]
    spec = catalog.get(a["action_type"])
    undo_label = None
    if a["status"] == "completed":
        if a["undo"]:
            undo_label = f"Undo: {a['undo']['display_name']}"
        elif spec is not None and spec.change_to:
            undo_label = f"Undo: {action_name(catalog, spec.change_to[0])}"
    expires = None
    if a["status"] == PENDING and a["expires_at"]:
        expires = short_time(a["expires_at"]) + (
            " (passed: expired by the next change)" if a["expires_at"] <= now else "")
    return {
        "action": a, "action_name": action_name(catalog, a["action_type"]),
        "created": short_time(a["created_at"]), "decided": short_time(a["decided_at"]),
        "expires": expires, "approval": approval_text(a["approval"]),
        "role_problem": role_problem, "undo_label": undo_label,
        "decision": {"rules": list(a["rules"]), "reasons": list(a["reasons"]),
                     "explain": explanation, "explain_note": explain_note},
        "evidence": evidence_view(story["evidence"]),
        "approvals": [{**ap, "at": short_time(ap["at"])} for ap in story["approvals"]],
        "ledger": [{**e, "at": short_time(e["at"])} for e in story["ledger"]],
    }


def undo_target(catalog: Catalog, action: ActionRecord) -> str | None:
    """The action type an email action's Undo changes it to (Defender's opposite move), or
    None when the action has its own undo (or none at all)."""
    if action.undo is not None:
        return None
    spec = catalog.get(action.action_type)
    return spec.change_to[0] if spec is not None and spec.change_to else None
