"""Microsoft's endpoints, as the executors use them when their config names no other: one
place, importable without httpx (``executors check`` shows them without the extra)."""

from __future__ import annotations

AUTHORITY = "https://login.microsoftonline.com"
DEFENDER_SCOPE = "https://api.securitycenter.microsoft.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"

# The API each remote executor type calls (analyzedEmails/remediate exists only in beta).
BASE_URLS = {
    "defender_endpoint": "https://api.securitycenter.microsoft.com",
    "graph_email": "https://graph.microsoft.com/beta",
    "graph_identity": "https://graph.microsoft.com/v1.0",
}
