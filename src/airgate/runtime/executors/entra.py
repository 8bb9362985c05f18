"""Calling Microsoft's APIs: an Entra ID app token (client credentials) and JSON requests
with bounded retries. Shared by ``defender.py`` and ``graph.py``; needs ``httpx``
(``pip install 'airgate[executors]'``), imported only when such an executor is built.

The token is the one documented request, ``POST {authority}/{tenant}/oauth2/v2.0/token``
with ``grant_type=client_credentials``, sent with httpx rather than through MSAL: MSAL
refuses an authority that is not HTTPS, which would keep the tests from standing in a
local server for Entra ID, and it would add a dependency for one form post. Tokens are
cached per (authority, tenant, client, scope) until a minute before they expire.

The client secret is read from the environment variable the config names, when a token
is needed. It is sent only in the token request's form body: no message this module
builds holds it or the token (a service's error text is cut to a few hundred
characters and scrubbed of both, in case it echoes them).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from airgate.runtime.executors.base import MASK, PlannedRequest
from airgate.runtime.executors.endpoints import AUTHORITY
from airgate.runtime.executors.output import storable_text
from airgate.runtime.executors.retry import retry_after

EARLY = 60.0  # seconds before expiry at which a cached token is renewed
MAX_WAIT = 60.0  # the longest Retry-After honoured (seconds)
_TOKENS: dict[tuple[str, str, str, str], tuple[str, float]] = {}
_LOCK = threading.Lock()


class ApiError(Exception):
    """A call failed: the message is fit for the ledger (no secret, no token)."""


class OutcomeUnknown(ApiError):
    """A request went out and no answer came back (a time-out reading it, a dropped
    connection): the service may have acted. Not raised for the token request, nor when
    the connection was never made."""


# Raised before a byte of the request left: nothing can have happened.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
             httpx.UnsupportedProtocol, httpx.ProxyError)


@dataclass
class Client:
    """An app registration's access to one API: token, base URL, retries, sleeping."""

    tenant_id: str
    client_id: str
    secret_env: str
    scope: str
    base_url: str
    authority: str = AUTHORITY
    retries: int = 3
    timeout: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    _secrets: list[str] = field(default_factory=list)
    _http: httpx.Client | None = None

    @contextmanager
    def session(self) -> Iterator[None]:
        """Connections reused for one run's requests, closed when it ends."""
        self._http = httpx.Client(timeout=self.timeout)
        try:
            yield
        finally:
            self._http.close()
            self._http = None

    # ------------------------------------------------------------ token
    def token(self) -> str:
        key = (self.authority, self.tenant_id, self.client_id, self.scope)
        with _LOCK:
            cached = _TOKENS.get(key)
        if cached is not None and cached[1] > time.monotonic():
            self._secrets.append(cached[0])
            return cached[0]
        secret = os.environ.get(self.secret_env, "")
        if not secret:
            raise ApiError(f"no client secret: the environment variable {self.secret_env}"
                           " is not set")
        self._secrets.append(secret)
        url = f"{self.authority.rstrip('/')}/{quote(self.tenant_id, safe='')}/oauth2/v2.0/token"
        form = {"client_id": self.client_id, "scope": self.scope, "client_secret": secret,
                "grant_type": "client_credentials"}
        body = self._send("POST", url, data=form, what="token request")
        if not isinstance(body, Mapping) or not isinstance(body.get("access_token"), str):
            raise ApiError("token request: the answer holds no access_token")
        token = str(body["access_token"])
        try:
            life = float(body.get("expires_in", 0))
        except (TypeError, ValueError):
            life = 0.0
        self._secrets.append(token)
        with _LOCK:
            _TOKENS[key] = (token, time.monotonic() + max(life - EARLY, 0.0))
        return token

    # ------------------------------------------------------------ calls
    def call(self, method: str, path: str, *, body: Mapping[str, Any] | None = None,
             params: Mapping[str, str] | None = None,
             request_id: str | None = None) -> tuple[int, Mapping[str, str], Any]:
        """``method`` on ``base_url + path`` (path segments already quoted); the status,
        headers and JSON answer (None when empty)."""
        headers = {"Authorization": f"Bearer {self.token()}", "Accept": "application/json"}
        if request_id:
            headers["client-request-id"] = request_id
        url = self.base_url.rstrip("/") + path
        what = f"{method} {path}"
        return self._send_full(method, url, what=what, json_body=body, params=params,
                               headers=headers)

    def plan(self, method: str, path: str, *, body: Mapping[str, Any] | None = None,
             request_id: str | None = None) -> PlannedRequest:
        """The request ``call`` would send, its token masked (nothing is sent)."""
        headers = {"Authorization": f"Bearer {MASK}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if request_id:
            headers["client-request-id"] = request_id
        return PlannedRequest(method, self.base_url.rstrip("/") + path, headers,
                              None if body is None else dict(body))

    def plan_token(self) -> PlannedRequest:
        """The token request, its secret masked (sent only when no cached token is valid)."""
        url = f"{self.authority.rstrip('/')}/{quote(self.tenant_id, safe='')}/oauth2/v2.0/token"
        form = {"client_id": self.client_id, "scope": self.scope, "client_secret": MASK,
                "grant_type": "client_credentials"}
        return PlannedRequest("POST", url, {"Content-Type": "application/x-www-form-urlencoded"},
                              form, f"unless a token is cached; the secret from {self.secret_env}")

    def _send(self, method: str, url: str, *, what: str, data: Mapping[str, str]) -> Any:
        # the token request acts on nothing: losing its answer is a plain failure
        return self._send_full(method, url, what=what, data=data, may_act=False)[2]

    def _send_full(self, method: str, url: str, *, what: str,
                   json_body: Mapping[str, Any] | None = None,
                   data: Mapping[str, str] | None = None,
                   params: Mapping[str, str] | None = None,
                   headers: Mapping[str, str] | None = None, may_act: bool = True,
                   ) -> tuple[int, Mapping[str, str], Any]:
        attempt = 0
        while True:
            try:
                if self._http is None:
                    raise ApiError(f"{what}: no session open")  # a caller's bug, not the API's
                answer = self._http.request(method, url, json=json_body, data=data,
                                           params=params, headers=headers,
                                           timeout=self.timeout)
            except httpx.HTTPError as exc:
                if isinstance(exc, httpx.TimeoutException):
                    message = f"{what}: no answer within {self.timeout:g} s"
                else:
                    message = f"{what}: network error ({type(exc).__name__})"
                if may_act and not isinstance(exc, _NOT_SENT):
                    raise OutcomeUnknown(message) from None
                raise ApiError(message) from None
            status = answer.status_code
            if (status == 429 or status >= 500) and attempt < self.retries:
                attempt += 1
                self.sleep(_wait(answer.headers.get("Retry-After"), attempt))
                continue
            if status >= 400:
                raise ApiError(f"{what} answered {status}: {self._error_text(answer)}")
            text = answer.text
            if not text.strip():
                return status, answer.headers, None
            try:
                return status, answer.headers, json.loads(text)
            except ValueError:
                raise ApiError(f"{what} answered {status} with a body that is not JSON") from None

    def _error_text(self, answer: httpx.Response) -> str:
        text = answer.text
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, Mapping):
            err = parsed.get("error")
            if isinstance(err, Mapping):
                text = f"{err.get('code', '')}: {err.get('message', '')}".strip(": ")
            elif isinstance(err, str):
                text = f"{err}: {parsed.get('error_description', '')}".strip(": ")
        return self.scrub(storable_text(text.strip() or answer.reason_phrase)[:300])

    def scrub(self, text: str) -> str:
        """``text`` with the secret and every token this client used masked."""
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


def _wait(retry_after_value: str | None, attempt: int) -> float:
    """Seconds to wait before retry ``attempt``: Retry-After (seconds or an HTTP date)
    when given, else exponential backoff with jitter; never more than ``MAX_WAIT``."""
    asked = retry_after(retry_after_value, MAX_WAIT)
    if asked is not None:
        return asked
    return float(min(0.5 * 2 ** (attempt - 1) + random.uniform(0, 0.25), MAX_WAIT))


def client_from_options(options: Mapping[str, Any], *, scope: str, base_url: str,
                        timeout: float) -> Client:
    """A client from an executor's config options (validated by the config schema)."""
    return Client(tenant_id=str(options["tenant_id"]), client_id=str(options["client_id"]),
                  secret_env=str(options["client_secret_env"]), scope=scope,
                  base_url=str(options.get("base_url", base_url)),
                  authority=str(options.get("authority", AUTHORITY)),
                  retries=int(options.get("retries", 3)), timeout=min(timeout, 30.0))
