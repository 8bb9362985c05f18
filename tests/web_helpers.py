"""The web Action Center's test world: a policy, users, a hostile Graph alert, and a
browser-like client that signs in and posts forms with their CSRF token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from server_helpers import Server, serve

POLICY = """\
apiVersion: airgate/v1
kind: Policy
metadata: {name: web}
spec:
  rules:
    - id: web.soft-delete
      match: {verdict: [malicious, suspicious], entity: analyzedMessage}
      action: soft_delete_email
      approval: {required: true, roles: [search-and-purge]}
    - id: web.quarantine
      match: {verdict: malicious, entity: file}
      action: quarantine_file
      approval: {required: true, roles: [active-remediation]}
    - id: web.isolate
      match: {verdict: malicious, entity: device}
      action: isolate_device
      approval: {required: true, roles: [active-remediation]}
"""

CONFIG = """\
users:
  alice: [active-remediation]
  dave: [search-and-purge]
  root: [global-admin]
automation: [soar]
"""

SUBJECT = "<script>alert(1)</script>"
FILE_NAME = 'x"onmouseover=alert(2) y.exe'


def alert(alert_id: str = "alert-1", *, subject: str = SUBJECT, message: str = "m-1",
          device: str = "d1") -> dict[str, Any]:
    """A Graph alert (v2): a phishing message, a file and a device, all malicious."""
    return {
        "@odata.type": "#microsoft.graph.security.alert", "id": alert_id, "incidentId": "42",
        "serviceSource": "microsoftDefenderForOffice365", "title": "Phish",
        "createdDateTime": "2024-05-01T11:00:00Z",
        "evidence": [
            {"@odata.type": "#microsoft.graph.security.analyzedMessageEvidence",
             "verdict": "malicious", "networkMessageId": message,
             "recipientEmailAddress": "ann@example.com", "subject": subject,
             "p1Sender": {"emailAddress": "evil@example.net"}},
            {"@odata.type": "#microsoft.graph.security.fileEvidence", "verdict": "malicious",
             "mdeDeviceId": device, "fileDetails": {"fileName": FILE_NAME, "sha256": "aa11"}},
            {"@odata.type": "#microsoft.graph.security.deviceEvidence", "verdict": "malicious",
             "mdeDeviceId": device, "deviceDnsName": "ws1"},
        ]}


def submit(srv: Server, doc: dict[str, Any], actor: str = "soar") -> dict[str, int]:
    """Submit a document through the JSON API (``POST /api/v1/evidence``) as ``actor``;
    the new action ids by action type."""
    body = srv.submit(doc, actor=actor)
    return {o["action_type"]: o["action_id"] for o in body["outcomes"]
            if o["action_id"] is not None}


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """A TestClient used as a browser: cookies kept, forms posted with their CSRF token."""

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        self.client = srv.client

    def csrf(self, path: str = "/actions/pending") -> str:
        page = self.client.get(path)
        found = CSRF.search(page.text)
        assert found, page.text
        return found.group(1)

    def sign_in(self, actor: str) -> Any:
        raw = self.srv.token(actor)
        return self.sign_in_with(raw)

    def sign_in_with(self, raw: str) -> Any:
        csrf = self.csrf("/signin")
        return self.client.post("/signin", data={"token": raw, "csrf": csrf},
                                follow_redirects=False)

    def post(self, path: str, data: dict[str, Any], *, follow: bool = True) -> Any:
        return self.client.post(path, data={"csrf": self.csrf(), **data},
                                follow_redirects=follow)


@contextmanager
def web(tmp: Path) -> Iterator[tuple[Server, Browser]]:
    with serve(tmp, policy=POLICY, config=CONFIG) as srv:
        yield srv, Browser(srv)
