"""Entra ID app tokens through MSAL (``msal.ConfidentialClientApplication``, client
credentials: a client secret or a certificate). Needs ``msal`` and ``httpx``
(``pip install 'airgate[executors]'``), imported only when a token is needed.

MSAL sends what Microsoft's identity platform documents: it reads the tenant's OpenID
configuration (``GET {authority}/{tenant}/v2.0/.well-known/openid-configuration``) once
per application, then ``POST``s the token endpoint it names with ``grant_type=
client_credentials``, the scope, and the ``client_secret`` or a ``client_assertion`` (a
JWT signed with the certificate's key, its ``x5t`` the certificate's SHA-1 thumbprint).

Choices and why:

- MSAL talks through ``MsalHttp``, an httpx adapter it accepts as ``http_client`` (its
  documented extension point): the same time-out and trusted CAs (``ca_file``) as the API
  calls, the same bounded 429/5xx retries honouring ``Retry-After``, and errors that
  become airgate messages. A body that is not JSON stops here, so MSAL never logs it.
- ``instance_discovery=False``: instance discovery asks login.microsoftonline.com whether
  an authority is known to Microsoft, a guard for authorities a user types in. Ours come
  from the governing config, and MSAL skips the check for Microsoft's own (global and
  sovereign) hosts anyway; with it off, a proxy or the tests' local server can stand in.
  MSAL still insists on an ``https://`` authority, and so does the config schema.
- One application per (authority, tenant, client, credential), kept for the process:
  MSAL's in-memory token cache then serves every run until the token nears expiry. A
  rotated secret or certificate is a new key, so the next token request uses it.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from airgate.runtime.executors.credentials import Certificate, Credential, CredentialError, Secret
from airgate.runtime.executors.output import storable_text

_APPS: dict[tuple[str, ...], Any] = {}
_LOCK = threading.Lock()


class TokenError(Exception):
    """No token: the message is fit for the ledger (it holds no secret)."""


@dataclass
class Response:
    """The requests-like answer MSAL reads: status, text, headers."""

    status_code: int
    text: str
    headers: Mapping[str, str]

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise TokenError(f"answered {self.status_code}")


@dataclass
class MsalHttp:
    """MSAL's ``http_client``: httpx, retries, and the last answer (for messages)."""

    verify: Any
    timeout: float
    retries: int
    wait: Callable[[str | None, int], float]
    sleep: Callable[[float], None] = time.sleep
    last: tuple[str, int, str] | None = field(default=None)  # what, status, body

    def post(self, url: str, params: Any = None, data: Any = None, headers: Any = None,
             **_: Any) -> Response:
        return self._send("POST", url, params=params, data=data, headers=headers)

    def get(self, url: str, params: Any = None, headers: Any = None, **_: Any) -> Response:
        return self._send("GET", url, params=params, headers=headers)

    def close(self) -> None:  # MSAL may call it; each request has its own connection
        pass

    def _send(self, method: str, url: str, *, params: Any, headers: Any,
              data: Any = None) -> Response:
        what = "token request" if method == "POST" else f"tenant discovery ({url})"
        content = data if isinstance(data, str | bytes) else None
        # MSAL hands the client assertion over as bytes and may leave a field None;
        # requests sends the bytes as text and drops the None, httpx would send their
        # repr and an empty field: do as requests does
        form = ({k: v.decode() if isinstance(v, bytes) else v for k, v in data.items()
                 if v is not None} if isinstance(data, Mapping) else None)
        attempt = 0
        with httpx.Client(verify=self.verify, timeout=self.timeout) as http:
            while True:
                try:
                    answer = http.request(method, url, params=params, headers=headers,
                                          data=form, content=content)
                except httpx.TimeoutException:
                    raise TokenError(f"{what}: no answer within {self.timeout:g} s") from None
                except httpx.HTTPError as exc:
                    raise TokenError(f"{what}: network error ({type(exc).__name__})") from None
                status = answer.status_code
                if (status == 429 or status >= 500) and attempt < self.retries:
                    attempt += 1
                    self.sleep(self.wait(answer.headers.get("Retry-After"), attempt))
                    continue
                break
        text = answer.text
        self.last = (what, status, text)
        try:
            json.loads(text)
        except ValueError:
            raise TokenError(f"{what} answered {status} with a body that is not JSON") from None
        return Response(status, text, dict(answer.headers))


def _app_key(authority: str, tenant: str, client_id: str, loaded: Secret | Certificate,
             verify: Any) -> tuple[str, ...]:
    material = loaded.value if isinstance(loaded, Secret) else loaded.private_key
    digest = hashlib.sha256(material.encode()).hexdigest()  # a key, never stored or shown
    return (authority, tenant, client_id, digest, repr(verify))


def acquire(*, authority: str, tenant: str, client_id: str, credential: Credential,
            scope: str, http: MsalHttp) -> tuple[str, list[str]]:
    """An access token for ``scope`` (cached by MSAL until shortly before it expires) and
    the secret values a message must never hold (the secret or key, the token)."""
    import msal  # the executors extra; imported only when a token is needed

    try:
        loaded = credential.load()
    except CredentialError as exc:
        raise TokenError(str(exc)) from None
    hidden = [loaded.value] if isinstance(loaded, Secret) else [loaded.private_key]
    base = f"{authority.rstrip('/')}/{quote(tenant, safe='')}"
    key = _app_key(base, tenant, client_id, loaded, http.verify)
    client_credential: Any = (loaded.value if isinstance(loaded, Secret) else
                              {"private_key": loaded.private_key,
                               "thumbprint": loaded.thumbprint})
    try:
        return _acquire(msal, app_key=key, base=base, client_id=client_id,
                        client_credential=client_credential, scope=scope, http=http,
                        hidden=hidden)
    except TokenError as exc:
        raise TokenError(scrub(str(exc), hidden)) from None


def scrub(text: str, hidden: list[str]) -> str:
    """``text`` with each hidden value (a secret, a key, a token) masked."""
    for value in hidden:
        if value:
            text = text.replace(value, "***")
    return text


def _acquire(msal: Any, *, app_key: tuple[str, ...], base: str, client_id: str,
             client_credential: Any, scope: str, http: MsalHttp,
             hidden: list[str]) -> tuple[str, list[str]]:
    key = app_key
    try:
        with _LOCK:  # one token request at a time; a cached token is served at once
            app = _APPS.get(key)
            if app is None:
                app = msal.ConfidentialClientApplication(
                    client_id, client_credential=client_credential, authority=base,
                    instance_discovery=False, http_client=http, token_cache=msal.TokenCache())
                _APPS[key] = app
            else:
                app.http_client.http_client = http  # this run's time-out and retries
            result = app.acquire_token_for_client(scopes=[scope])
    except TokenError:
        raise
    except ValueError as exc:
        # MSAL's words for an authority it refuses or a discovery that failed: say which
        raise TokenError(_discovery_message(http, base, exc)) from None
    except Exception as exc:  # noqa: BLE001 - MSAL's own failures, named without detail
        raise TokenError(_token_message(http, None, type(exc).__name__, hidden)) from None
    if isinstance(result, Mapping) and result.get("error"):
        raise TokenError(_token_message(http, result, "", hidden))
    if not isinstance(result, Mapping) or not isinstance(result.get("access_token"), str):
        raise TokenError(_token_message(http, result if isinstance(result, Mapping) else None,
                                        "the answer holds no access_token", hidden))
    token = str(result["access_token"])
    return token, [*hidden, token]


def _discovery_message(http: MsalHttp, base: str, exc: ValueError) -> str:
    if http.last is not None and http.last[1] >= 400:
        return f"{http.last[0]} answered {http.last[1]}"
    if str(exc).startswith("Your given address"):
        return f"the authority {base} is not an https:// URL with a tenant"
    return f"tenant discovery for {base} failed: the answer is not an OpenID configuration"


def _token_message(http: MsalHttp, result: Mapping[str, Any] | None, fallback: str,
                   hidden: list[str]) -> str:
    """``token request answered STATUS: ERROR: DESCRIPTION`` (Entra's own words, cut to
    300 characters; the caller scrubs them of the secret)."""
    last = http.last if http.last and http.last[0] == "token request" else None
    status = f" answered {last[1]}" if last else ""
    if not (result and result.get("error")) and last is not None:
        try:
            parsed = json.loads(last[2])
        except ValueError:
            parsed = None
        result = parsed if isinstance(parsed, Mapping) else None
    if result and result.get("error"):
        error = result.get("error")
        if isinstance(error, Mapping):  # a proxy answering in Graph's error shape
            text = f"{error.get('code', '')}: {error.get('message', '')}"
        else:
            text = f"{error}: {result.get('error_description', '')}"
        # scrubbed before it is cut, so no piece of a secret is left at the cut
        return f"token request{status}: {storable_text(scrub(text.strip(': '), hidden))[:300]}"
    return f"token request{status}" + (f": {fallback}" if fallback else "")
