"""An investigation's status, derived from the statuses of its actions (DOMAIN.md).

A superseded action does not count: its replacement (``redo``) holds the same
evidence and speaks for it. In order of precedence:

- no actions at all: ``no threats found``
- any action pending: ``pending approval``
- any approved or running: ``running``
- any failed: ``failed``
- any expired: ``terminated by system`` (a timed-out action counts as rejected)
- any rejected or undone: ``partially remediated`` (some remediation was not
  carried out, or no longer is: an undone action's effect was reversed)
- otherwise every action was carried out (completed or deduplicated): ``remediated``
"""

from __future__ import annotations

from collections.abc import Mapping

NO_THREATS = "no threats found"
PENDING_APPROVAL = "pending approval"
RUNNING = "running"
FAILED = "failed"
TERMINATED = "terminated by system"
PARTIAL = "partially remediated"
REMEDIATED = "remediated"


def derive(counts: Mapping[str, int]) -> str:
    """The status of an investigation whose actions are in ``counts`` (status -> how many)."""
    present = {status for status, n in counts.items() if n and status != "superseded"}
    if not present:
        return NO_THREATS
    if "pending" in present:
        return PENDING_APPROVAL
    if present & {"approved", "running"}:
        return RUNNING
    if "failed" in present:
        return FAILED
    if "expired" in present:
        return TERMINATED
    if present & {"rejected", "undone"}:
        return PARTIAL
    return REMEDIATED
