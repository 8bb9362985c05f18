"""A stand-in for Entra ID's token endpoint, Defender for Endpoint and Microsoft Graph on
127.0.0.1, answering the documented requests with the documented shapes; it records
every request it gets so tests can assert the exact paths, headers and bodies."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TENANT = "contoso.onmicrosoft.com"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
SECRET = "s3cr3t-client-value-do-not-print"  # noqa: S105 - a test value
TOKEN = "eyJ0eXAi.fake-access-token.sig"  # noqa: S105 - a test value
SECRET_ENV = "AIRGATE_TEST_MS_SECRET"  # noqa: S105 - a variable name


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    delay: float = 0.0  # seconds before answering (a slow service)
    drop: bool = False  # read the request, then close the connection without answering


class Fake:
    """Routes (method, path) to a list of answers, used in order; the last one repeats."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.url = ""
        token = Answer(200, {"token_type": "Bearer", "expires_in": 3599,
                             "ext_expires_in": 3599, "access_token": TOKEN})
        self.on("POST", f"/{TENANT}/oauth2/v2.0/token", token)

    def on(self, method: str, path: str, *answers: Answer) -> None:
        self.routes[(method, path)] = list(answers)

    def calls(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        return [s for s in self.seen if (method is None or s.method == method)
                and (path is None or s.path == path)]

    def api_calls(self) -> list[Seen]:
        return [s for s in self.seen if not s.path.endswith("/oauth2/v2.0/token")]

    def answer(self, seen: Seen) -> Answer:
        answers = self.routes.get((seen.method, seen.path))
        if not answers:
            return Answer(404, {"error": {"code": "ResourceNotFound",
                                          "message": f"no route {seen.method} {seen.path}"}})
        return answers.pop(0) if len(answers) > 1 else answers[0]


def _handler(fake: Fake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            if self.headers.get("Content-Type", "").startswith("application/json"):
                body: Any = json.loads(raw)
            elif raw:
                body = {k: v[0] for k, v in parse_qs(raw).items()}
            else:
                body = None
            seen = Seen(self.command, parts.path, parse_qs(parts.query),
                        {k.lower(): v for k, v in self.headers.items()}, body)
            fake.seen.append(seen)
            answer = fake.answer(seen)
            if answer.drop:
                self.close_connection = True
                return
            if answer.delay:
                time.sleep(answer.delay)
            data = answer.raw if answer.raw is not None else (
                b"" if answer.body is None else json.dumps(answer.body).encode())
            self.send_response(answer.status)
            for k, v in answer.headers.items():
                self.send_header(k, v)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _any

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    return Handler


@contextmanager
def serve() -> Iterator[Fake]:
    fake = Fake()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def options(fake: Fake, **more: Any) -> dict[str, Any]:
    """Executor options pointing every URL at the fake."""
    return {"tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret_env": SECRET_ENV,
            "authority": fake.url, "base_url": fake.url, **more}
