"""Calling Microsoft's APIs: an Entra ID app token (client credentials, through MSAL:
``tokens.py``) and JSON requests with bounded retries. Shared by ``defender.py`` and
``graph.py``; needs ``httpx`` and ``msal`` (``pip install 'airgate[executors]'``),
imported only when such an executor is built.

The credential (a client secret or a certificate, from an environment variable or files
the config names: ``credentials.py``) is read when a token is needed. No message this
module builds holds it or the token (a service's error text is cut to a few hundred
characters and scrubbed of both, in case it echoes them).
"""

from __future__ import annotations

import json
import random
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from airgate.runtime.executors.base import MASK, PlannedRequest
from airgate.runtime.executors.credentials import Credential, credential_of
from airgate.runtime.executors.endpoints import AUTHORITY
from airgate.runtime.executors.output import storable_text
from airgate.runtime.executors.retry import retry_after
from airgate.runtime.executors.tokens import MsalHttp, TokenError, acquire

MAX_WAIT = 60.0  # the longest Retry-After honoured (seconds)
_CONTEXTS: dict[str, ssl.SSLContext] = {}


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
    credential: Credential
    scope: str
    base_url: str
    authority: str = AUTHORITY
    retries: int = 3
    timeout: float = 30.0
    ca_file: str | None = None  # trust this PEM bundle instead of the system's CAs
    sleep: Callable[[float], None] = time.sleep
    _secrets: list[str] = field(default_factory=list)
    _http: httpx.Client | None = None

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """TLS verification: always on; ``ca_file`` (a private CA, a TLS-inspecting proxy)
        replaces the system's trust store. One context per file, reused."""
        if not self.ca_file:
            return True
        context = _CONTEXTS.get(self.ca_file)
        if context is None:
            try:
                context = ssl.create_default_context(cafile=self.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ApiError(f"ca_file {self.ca_file} cannot be used"
                               f" ({type(exc).__name__})") from None
            _CONTEXTS[self.ca_file] = context
        return context

    @contextmanager
    def session(self) -> Iterator[None]:
        """Connections reused for one run's requests, closed when it ends."""
        self._http = httpx.Client(timeout=self.timeout, verify=self.verify)
        try:
            yield
        finally:
            self._http.close()
            self._http = None

    # ------------------------------------------------------------ token
    def token(self) -> str:
        """An access token for ``scope``: MSAL's cached one, or a new one."""
        http = MsalHttp(self.verify, self.timeout, self.retries, _wait, self.sleep)
        try:
            token, hidden = acquire(authority=self.authority, tenant=self.tenant_id,
                                    client_id=self.client_id, credential=self.credential,
                                    scope=self.scope, http=http)
        except TokenError as exc:
            raise ApiError(self.scrub(str(exc))) from None
        self._secrets.extend(hidden)
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
        """The token request MSAL sends, its secret masked (only when no cached token is
        valid; the endpoint is the one the tenant's OpenID configuration names, this one
        at Microsoft's authorities)."""
        url = f"{self.authority.rstrip('/')}/{quote(self.tenant_id, safe='')}/oauth2/v2.0/token"
        form = {"client_id": self.client_id, "scope": self.scope,
                "grant_type": "client_credentials", "client_info": "1"}
        if self.credential.kind == "certificate":
            form.update(client_assertion_type="urn:ietf:params:oauth:client-assertion-type:"
                        "jwt-bearer", client_assertion=MASK)
        else:
            form["client_secret"] = MASK
        return PlannedRequest("POST", url, {"Content-Type": "application/x-www-form-urlencoded"},
                              form, f"unless a token is cached; the credential from"
                              f" {self.credential.described}")

    def _send_full(self, method: str, url: str, *, what: str,
                   json_body: Mapping[str, Any] | None = None,
                   params: Mapping[str, str] | None = None,
                   headers: Mapping[str, str] | None = None,
                   ) -> tuple[int, Mapping[str, str], Any]:
        attempt = 0
        while True:
            try:
                if self._http is None:
                    raise ApiError(f"{what}: no session open")  # a caller's bug, not the API's
                answer = self._http.request(method, url, json=json_body,
                                           params=params, headers=headers,
                                           timeout=self.timeout)
            except httpx.HTTPError as exc:
                if isinstance(exc, httpx.TimeoutException):
                    message = f"{what}: no answer within {self.timeout:g} s"
                else:
                    message = f"{what}: network error ({type(exc).__name__})"
                if not isinstance(exc, _NOT_SENT):
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
        # scrubbed before it is cut, so no piece of a secret is left at the cut
        return storable_text(self.scrub(text.strip() or answer.reason_phrase))[:300]

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
                  credential=credential_of(options), scope=scope,
                  ca_file=str(options["ca_file"]) if options.get("ca_file") else None,
                  base_url=str(options.get("base_url", base_url)),
                  authority=str(options.get("authority", AUTHORITY)),
                  retries=int(options.get("retries", 3)), timeout=min(timeout, 30.0))
