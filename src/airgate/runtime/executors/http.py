"""The ``http`` executor: the request as signed JSON to a configured URL (a SOAR, a ticket).

What is sent, and how a receiver checks it (docs/executors.md, "The http executor"):

- the body is exactly ``ExecRequest.as_json()`` (UTF-8): evidence travels only in it,
  never in the URL or a header, which come from the config alone;
- ``X-Airgate-Timestamp``: Unix seconds when this attempt was signed;
- ``X-Airgate-Signature: sha256=HEX``: HMAC-SHA256, keyed with the secret from the
  environment variable the config names, over ``TIMESTAMP + "." + BODY`` (bytes);
- ``Idempotency-Key``: the run's key, the same on a retry and on a reconciling run.

A request sent without an answer coming back (a time-out reading it, a dropped
connection) leaves the action running for ``tick`` to send again with that key; a
connection that could not be made is a failure.

``deliver`` (signing, the time-out, bounded retries of 429/503, no redirects) is shared
with the notifier. httpx is imported only when a request is made, so ``import airgate``
and the commands that send nothing never load it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airgate.render import escape
from airgate.runtime.executors.base import (
    MASK,
    ExecRequest,
    ExecResult,
    PlannedRequest,
    masked_headers,
)
from airgate.runtime.executors.output import parse_strict_json, storable_text
from airgate.runtime.executors.retry import retry_after

MAX_BODY = 64 * 1024  # bytes of an answer kept
EXCERPT = 200  # characters of a failed answer quoted in the message
ATTEMPTS = 3  # a 429 or 503 is tried again at most twice
MAX_WAIT = 30.0  # seconds: the longest Retry-After honoured between attempts
BACKOFF = 0.5  # seconds before the first retry without Retry-After, doubled each time
RETRY_STATUSES = (429, 503)
TIMESTAMP_HEADER = "X-Airgate-Timestamp"
SIGNATURE_HEADER = "X-Airgate-Signature"


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Airgate-Signature`` value: ``sha256=`` and the HMAC-SHA256 hex digest, keyed
    with ``secret``, of ``timestamp + "." + body``."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, header: str, *,
           window: float = 300.0, now: float | None = None) -> bool:
    """What a receiver checks (for receivers written in Python, and the tests): the
    signature matches in constant time and the timestamp is within ``window`` seconds."""
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    age = abs((time.time() if now is None else now) - int(timestamp))
    # Bytes, so that a header holding any character is a mismatch, not a TypeError.
    expected = signature(secret, timestamp, body).encode("ascii")
    return age <= window and hmac.compare_digest(
        expected, header.encode("utf-8", "surrogateescape"))


def read_secret(env: str) -> bytes | None:
    """The signing secret from the environment variable ``env``; None if unset or empty."""
    value = os.environ.get(env, "")
    return value.encode("utf-8") if value else None


@dataclass(frozen=True)
class Answer:
    """A response: status, the first ``MAX_BODY`` bytes, whether more were cut, headers."""

    status: int
    body: bytes
    truncated: bool
    headers: Mapping[str, str]


class DeliveryError(Exception):
    """The request got no answer (time-out, refused, DNS): the message names no secret.

    ``unknown`` is True when the request may have been received (it was sent, or partly,
    and the answer never came): the receiver may have acted on it."""

    def __init__(self, message: str, *, unknown: bool = False) -> None:
        super().__init__(message)
        self.unknown = unknown


# Raised before a byte of the request left: the receiver cannot have acted.
_NOT_SENT_NAMES = ("ConnectError", "ConnectTimeout", "PoolTimeout", "UnsupportedProtocol",
                   "ProxyError")


def retry_delay(value: str | None, attempt: int, base: float = BACKOFF) -> float:
    """Seconds to wait before retry number ``attempt + 1``: the answer's ``Retry-After``
    (seconds or an HTTP date), else ``base`` doubled per attempt; at most ``MAX_WAIT``."""
    asked = retry_after(value, MAX_WAIT)
    return asked if asked is not None else float(min(base * 2.0 ** attempt, MAX_WAIT))


def request_headers(configured: Mapping[str, str], key: str | None, timestamp: str,
                    signed: str) -> dict[str, str]:
    """The headers of one attempt: the configured ones, overridden by airgate's own."""
    own = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
           SIGNATURE_HEADER: signed, "User-Agent": "airgate"}
    merged = {k: v for k, v in configured.items() if k.lower() not in {
        o.lower() for o in (*own, "Idempotency-Key")}}
    merged.update(own)
    if key is not None:
        merged["Idempotency-Key"] = key
    return merged


def deliver(url: str, body: bytes, secret: bytes, *, method: str = "POST",
            headers: Mapping[str, str] | None = None, key: str | None = None,
            timeout: float = 10.0, attempts: int = ATTEMPTS,
            sleep: Callable[[float], None] = time.sleep) -> Answer:
    """Send ``body`` signed to ``url``, with ``key`` as ``Idempotency-Key``.

    ``timeout`` bounds the whole delivery, retries and waits included, so a run never
    outlasts the time-out that reconciliation counts on. A 429 or 503 is sent again
    (freshly signed) after its ``Retry-After`` (capped) or a doubling backoff, up to
    ``attempts`` in all, while the time-out leaves room. Redirects are not followed: the
    signed body and key would go to a place the config never named."""
    import httpx

    if not url.startswith(("http://", "https://")):
        raise DeliveryError("only http:// and https:// URLs are allowed")
    host = httpx.URL(url).host
    late = f"no answer from {host} within {timeout:g} s"
    not_sent = tuple(getattr(httpx, name) for name in _NOT_SENT_NAMES)
    deadline = time.monotonic() + timeout
    sent = dict(headers or {})
    answer: Answer | None = None
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for attempt in range(max(attempts, 1)):
            if answer is not None:
                delay = retry_delay(answer.headers.get("retry-after"), attempt - 1)
                if time.monotonic() + delay >= deadline:
                    break  # no room for another attempt: the last answer stands
                sleep(delay)
            timestamp = str(int(time.time()))
            merged = request_headers(sent, key, timestamp, signature(secret, timestamp, body))
            try:
                answer = _send(client, method, url, body, merged, deadline)
            except httpx.HTTPError as exc:
                unknown = not isinstance(exc, not_sent)
                if isinstance(exc, httpx.TimeoutException):
                    raise DeliveryError(late, unknown=unknown) from None
                raise DeliveryError(f"cannot reach {host}: {type(exc).__name__}"
                                    f" ({escape(str(exc))[:EXCERPT]})", unknown=unknown) from None
            except _Late:
                raise DeliveryError(late, unknown=True) from None
            if answer is None:
                raise DeliveryError(late)  # the time-out passed before this attempt left
            if answer.status not in RETRY_STATUSES:
                break
    assert answer is not None
    return answer


class _Late(Exception):
    """The deadline passed while the answer was being read (the request was sent)."""


def _send(client: Any, method: str, url: str, body: bytes, headers: dict[str, str],
          deadline: float) -> Answer | None:
    """One request; None when the deadline passed before it was sent, ``_Late`` when it
    passed while its answer was read."""
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    with client.stream(method, url, content=body, headers=headers, timeout=left) as response:
        kept = bytearray()
        truncated = False
        for chunk in response.iter_bytes():
            if time.monotonic() > deadline:
                raise _Late  # a receiver trickling its answer gets no more time
            room = MAX_BODY - len(kept)
            if len(chunk) > room:
                kept += chunk[:room]
                truncated = True
                break  # the rest is not read: closing the stream drops it
            kept += chunk
        return Answer(response.status_code, bytes(kept), truncated,
                      {k.lower(): v for k, v in response.headers.items()})


def answer_text(answer: Answer) -> str:
    return storable_text(answer.body.decode("utf-8", "backslashreplace"))


class HttpExecutor:
    """Sends the request as signed JSON to the configured URL; 2xx is done."""

    name = "http"

    def __init__(self, url: str, *, secret_env: str, method: str = "POST",
                 headers: Mapping[str, str] | None = None, timeout: float = 60.0,
                 attempts: int = ATTEMPTS) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("an http executor needs an http:// or https:// URL")
        self.url = url
        self.secret_env = secret_env
        self.method = method
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.attempts = attempts

    def run(self, request: ExecRequest) -> ExecResult:
        secret = read_secret(self.secret_env)
        if secret is None:
            return ExecResult(False, None, f"the signing secret is missing: set the environment"
                              f" variable {self.secret_env}", self.name)
        body = request.as_json().encode("utf-8")
        try:
            answer = deliver(self.url, body, secret, method=self.method, headers=self.headers,
                             key=request.idempotency_key, timeout=self.timeout,
                             attempts=self.attempts)
        except DeliveryError as exc:
            # unknown: the reconciling run sends it again with the same Idempotency-Key
            return ExecResult(False, None, str(exc), self.name, unknown=exc.unknown)
        return self._result(answer)

    def plan(self, request: ExecRequest) -> list[PlannedRequest] | str:
        """The request a run would send, its signature (and any secret header) masked."""
        headers = request_headers(self.headers, request.idempotency_key, "UNIX-SECONDS",
                                  "sha256=" + MASK)
        return [PlannedRequest(self.method, self.url, masked_headers(headers),
                               json.loads(request.as_json()),
                               f"signed with the secret from {self.secret_env}; 429 and 503"
                               f" sent again, {self.attempts} attempts within"
                               f" {self.timeout:g} s")]

    def _result(self, answer: Answer) -> ExecResult:
        text = answer_text(answer)
        if 300 <= answer.status < 400:
            where = escape(answer.headers.get("location", ""))[:EXCERPT]
            return ExecResult(False, None, f"HTTP {answer.status}: redirect to {where!r} not"
                              " followed (the signed request goes only to the configured URL)",
                              self.name)
        if not 200 <= answer.status < 300:
            excerpt = escape(text[:EXCERPT]) + ("..." if len(text) > EXCERPT else "")
            return ExecResult(False, None, f"HTTP {answer.status}: {excerpt or 'no body'}",
                              self.name)
        output: dict[str, Any] = {"status": answer.status}
        if answer.truncated:
            output.update(text=escape(text), truncated=True)
        elif text.strip():
            try:
                output["json"] = parse_strict_json(text)
            except ValueError:
                output["text"] = escape(text)
        return ExecResult(True, output, "", self.name)


def options_of(options: Mapping[str, Any]) -> dict[str, Any]:
    """The HttpExecutor keyword arguments an ``ExecutorConfig.options`` mapping gives."""
    return {"secret_env": str(options["secret_env"]),
            "method": str(options.get("method", "POST")),
            "headers": {str(k): str(v) for k, v in (options.get("headers") or {}).items()}}


__all__ = ["Answer", "DeliveryError", "HttpExecutor", "deliver", "signature", "verify"]
