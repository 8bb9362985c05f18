"""A webhook receiver on 127.0.0.1 for the http executor and notification tests: it records
every request and answers from a script of replies (the last reply repeats)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b'{"ticket": "T-1"}'
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    hold: threading.Event | None = None  # answer only once this is set (a slow receiver)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


class Webhook:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.replies: list[Reply] = [Reply()]
        self.answered = 0
        self.url = ""
        self.lock = threading.Lock()

    def reply(self) -> Reply:
        with self.lock:
            index = min(len(self.requests) - 1, len(self.replies) - 1)
            return self.replies[index]

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Whether ``count`` requests arrived within ``timeout`` seconds."""
        done = threading.Event()
        for _ in range(int(timeout / 0.02)):
            if len(self.requests) >= count:
                return True
            done.wait(0.02)
        return len(self.requests) >= count


@contextmanager
def webhook() -> Iterator[Webhook]:
    hook = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with hook.lock:
                hook.requests.append(Received(self.command, self.path,
                                              {k.lower(): v for k, v in self.headers.items()},
                                              body))
            reply = hook.reply()
            if reply.hold is not None:
                reply.hold.wait(30)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
            with hook.lock:
                hook.answered += 1

        do_POST = do_PUT = do_PATCH = do_GET = _any

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: the tests assert on what was recorded

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    hook.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield hook
    finally:
        for reply in hook.replies:
            if reply.hold is not None:
                reply.hold.set()
        server.shutdown()
        server.server_close()
        thread.join()
