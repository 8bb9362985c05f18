"""A stand-in for Entra ID's token endpoint, Defender for Endpoint and Microsoft Graph on
127.0.0.1, answering the documented requests with the documented shapes; it records
every request it gets so tests can assert the exact paths, headers and bodies.

The APIs answer on ``fake.url`` (http); Entra ID on ``fake.authority``, over TLS with a
certificate made for 127.0.0.1 once per test process (``fake.ca_file`` trusts it): MSAL
accepts only an https:// authority. Both listeners share one route table and one log."""

from __future__ import annotations

import atexit
import datetime
import ipaddress
import json
import shutil
import ssl
import tempfile
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
TOKEN_PATH = f"/{TENANT}/oauth2/v2.0/token"  # noqa: S105 - a path
DISCOVERY_PATH = f"/{TENANT}/v2.0/.well-known/openid-configuration"


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
        self.authority = ""
        self.ca_file = ""
        token = Answer(200, {"token_type": "Bearer", "expires_in": 3599,
                             "ext_expires_in": 3599, "access_token": TOKEN})
        self.on("POST", TOKEN_PATH, token)

    def discovery(self) -> Answer:
        """The tenant's OpenID configuration, as Entra ID's v2.0 endpoint gives it."""
        base = f"{self.authority}/{TENANT}"
        return Answer(200, {"token_endpoint": f"{base}/oauth2/v2.0/token",
                            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                            "issuer": f"{base}/v2.0", "jwks_uri": f"{base}/discovery/v2.0/keys"})

    def on(self, method: str, path: str, *answers: Answer) -> None:
        self.routes[(method, path)] = list(answers)

    def calls(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        return [s for s in self.seen if (method is None or s.method == method)
                and (path is None or s.path == path)]

    def api_calls(self) -> list[Seen]:
        return [s for s in self.seen if s.path not in (TOKEN_PATH, DISCOVERY_PATH)]

    def token_calls(self) -> list[Seen]:
        return self.calls("POST", TOKEN_PATH)

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


_TLS: tuple[str, str, str] | None = None  # (certificate, key, directory), made once


def tls_files() -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files), made once."""
    global _TLS
    if _TLS is None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=7))
                .add_extension(x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        folder = tempfile.mkdtemp(prefix="airgate-ms-fake-")
        atexit.register(shutil.rmtree, folder, True)
        cert_path, key_path = f"{folder}/cert.pem", f"{folder}/key.pem"
        with open(cert_path, "wb") as out:
            out.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(key_path, "wb") as out:
            out.write(key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
        _TLS = (cert_path, key_path, folder)
    return _TLS[0], _TLS[1]


def _start(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return thread


@contextmanager
def serve() -> Iterator[Fake]:
    fake = Fake()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    tls = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    cert, key = tls_files()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    tls.socket = context.wrap_socket(tls.socket, server_side=True)
    threads = [_start(server), _start(tls)]
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    fake.authority = f"https://127.0.0.1:{tls.server_address[1]}"
    fake.ca_file = cert
    fake.on("GET", DISCOVERY_PATH, fake.discovery())
    try:
        yield fake
    finally:
        for each in (server, tls):
            each.shutdown()
            each.server_close()
        for thread in threads:
            thread.join()


def options(fake: Fake, **more: Any) -> dict[str, Any]:
    """Executor options pointing every URL at the fake."""
    return {"tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret_env": SECRET_ENV,
            "authority": fake.authority, "ca_file": fake.ca_file, "base_url": fake.url,
            **more}
