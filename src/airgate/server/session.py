"""Browser sessions of the web Action Center: signed cookies, CSRF tokens, sign-in limits.

The only credential airgate has is an API token. The browser posts it once, on
the sign-in form; the cookie then holds a signed, expiring value that names the
token's id, never the token itself, so a stolen cookie expires and cannot be
turned into an API credential. The value is re-checked against the token store
on every request (the caller does that), so revoking the token ends its
sessions at once.

Signatures are HMAC-SHA256 with a key of the server process (random at start
unless configured): restarting the server signs everyone out, which is the
price of keeping no session table.

CSRF: each session has a nonce; the form token is an HMAC of it, so it needs no
storage and changes with every sign-in. The sign-in form, before any session,
gets a token bound to a short-lived pre-session cookie (login CSRF).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

COOKIE = "airgate_session"
PRE_COOKIE = "airgate_signin"  # binds the sign-in form's CSRF token to this browser
SESSION_SECONDS = 8 * 3600  # one working day; signing in again costs a paste
PRE_SECONDS = 600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    """A valid session value: which token signed in, until when, and its CSRF nonce."""

    token_id: str
    expires: int
    nonce: str


class Sessions:
    """Issues and reads signed session values and CSRF tokens with one process key."""

    def __init__(self, key: bytes | None = None, *, lifetime: int = SESSION_SECONDS) -> None:
        self._key = key or secrets.token_bytes(32)
        self.lifetime = lifetime

    def _mac(self, purpose: str, data: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}\x00{data}".encode(), hashlib.sha256)
                    .digest())

    def seal(self, purpose: str, data: str) -> str:
        """A signature of ``data`` for ``purpose`` (a flash message's cookie)."""
        return self._mac(purpose, data)

    def unseal(self, purpose: str, data: str, mac: str) -> bool:
        return hmac.compare_digest(mac, self._mac(purpose, data))

    # ------------------------------------------------------------ sessions
    def issue(self, token_id: str, now: float | None = None) -> str:
        """A cookie value naming ``token_id``, valid for ``lifetime`` seconds."""
        expires = int((time.time() if now is None else now) + self.lifetime)
        body = _b64(json.dumps({"t": token_id, "e": expires, "n": secrets.token_urlsafe(16)},
                               separators=(",", ":")).encode())
        return f"{body}.{self._mac('session', body)}"

    def read(self, value: str | None, now: float | None = None) -> Session | None:
        """The session a cookie value stands for, or None (absent, forged, expired, garbled)."""
        if not value or value.count(".") != 1 or len(value) > 4096:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac("session", body)):
            return None
        try:
            data = json.loads(_unb64(body))
            session = Session(str(data["t"]), int(data["e"]), str(data["n"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires <= (time.time() if now is None else now):
            return None
        return session

    # ------------------------------------------------------------ CSRF
    def csrf(self, session: Session) -> str:
        """The CSRF token every form of this session carries."""
        return self._mac("csrf", session.nonce)

    def check_csrf(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf(session))

    def pre_session(self) -> tuple[str, str]:
        """A pre-session cookie value and the sign-in form's CSRF token bound to it."""
        nonce = secrets.token_urlsafe(16)
        expires = int(time.time() + PRE_SECONDS)
        value = f"{nonce}.{expires}"
        return f"{value}.{self._mac('pre', value)}", self._mac("signin-csrf", nonce)

    def check_pre_session(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token or cookie.count(".") != 2:
            return False
        nonce, expires, mac = cookie.split(".")
        if not hmac.compare_digest(mac, self._mac("pre", f"{nonce}.{expires}")):
            return False
        if not expires.isdigit() or int(expires) <= time.time():
            return False
        return hmac.compare_digest(str(token), self._mac("signin-csrf", nonce))


class SignInLimiter:
    """Failed sign-ins per client address: at most ``limit`` in ``window`` seconds.

    In memory, per process: enough to make guessing tokens (256-bit) pointless and
    to keep a script from filling the ledger or logs; a cluster needs a shared one."""

    def __init__(self, limit: int = 5, window: float = 60.0, *, max_clients: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self._max = max_clients
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.get(client, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, client: str, now: float | None = None) -> int | None:
        """Seconds until ``client`` may try again, or None when it may now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._recent(client, now)
            if len(times) < self.limit:
                return None
            return max(1, int(times[0] + self.window - now + 0.999))

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if client not in self._failures and len(self._failures) >= self._max:
                # Bounded memory: forget the clients whose failures have all aged out,
                # else the oldest one.
                for key in [k for k, v in self._failures.items() if not self._recent(k, now)]:
                    del self._failures[key]
                if len(self._failures) >= self._max:
                    del self._failures[next(iter(self._failures))]
            times = self._recent(client, now)
            times.append(now)
            self._failures[client] = times

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
