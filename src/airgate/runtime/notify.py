"""Notifications: a webhook (a chat channel) told when an action waits, expires or fails.

The queue operations call :func:`send` after their transaction commits. Sending happens
on a background thread of this process, so a slow, failing or unreachable endpoint
never delays or fails the operation: each notification is tried ``ATTEMPTS`` times
with a doubling backoff (a ``Retry-After`` is honoured, capped), and a last failure is
only logged (logger ``airgate.runtime.notify``, never the secret). The thread is not a daemon:
a command's process ends once its notifications are sent or given up, a bounded time.

Retries live in this process only, with no outbox table: there is no long-lived
process yet to drain one (the worker service of issue 10 is), and a notification is
an alert, not part of an action's record; the ledger remains the record. A process
killed before sending loses its notifications; the outbox comes with the worker.

Requests are signed as the ``http`` executor's are (``executors/http.py``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airgate.render import escape
from airgate.runtime.config import NotifyConfig
from airgate.runtime.executors.http import DeliveryError, deliver, read_secret, retry_delay
from airgate.runtime.records import ActionRecord

log = logging.getLogger(__name__)  # airgate.runtime.notify
EVENTS = ("pending", "expired", "failed")
ATTEMPTS = 3
BACKOFF = 1.0  # seconds before the second attempt, doubled for each one after
EVENT_HEADER = "X-Airgate-Event"


@dataclass(frozen=True)
class _Job:
    config: NotifyConfig
    event: str
    action_id: int
    key: str
    body: bytes
    # Read when the notification is queued, by the thread whose change it reports: the
    # sender thread reading the environment later raced with whoever set it (a test's
    # CliRunner restores it as soon as the command returns). Never shown in a repr.
    secret: bytes | None = field(default=None, repr=False)


def payload(config: NotifyConfig, event: str, action: ActionRecord,
            status: str | None = None) -> dict[str, Any]:
    """What a notification carries: the event, the action (its fields are data; ``text`` is
    a one-line summary with control characters escaped, for a chat message) and its link."""
    link = config.link.replace("{id}", str(action.id)) if config.link else None
    status = status or action.status
    entity = {"type": action.entity_type, "key": action.entity_key, "name": action.entity_name}
    text = (f"airgate: action {action.id} ({action.action_type} on {action.entity_type}"
            f" {action.entity_name or action.entity_key}) {_WHAT[event]}")
    if event == "failed" and action.error:
        text += f": {action.error}"
    return {"event": event, "link": link, "text": escape(text)[:1000],
            "action": {"id": action.id, "action_type": action.action_type, "status": status,
                       "operation": action.operation, "investigation": action.investigation,
                       "source": action.source, "entity": entity, "error": action.error,
                       "expires_at": action.expires_at}}


_WHAT = {"pending": "is waiting for approval", "expired": "expired without a decision",
         "failed": "failed"}


def send(config: NotifyConfig | None, event: str, actions: Iterable[ActionRecord],
         status: str | None = None) -> None:
    """Queue a notification per action for the background sender; never raises.

    Call it after the state change committed. ``status`` overrides the records' own
    (records read before the change)."""
    try:
        if config is None or event not in config.events:
            return
        secret = read_secret(config.secret_env)
        for action in actions:
            body = json.dumps(payload(config, event, action, status), sort_keys=True,
                              ensure_ascii=False, default=str).encode("utf-8")
            key = f"airgate:{action.id}:notify:{event}:{action.version}"
            _SENDER.put(_Job(config, event, action.id, key, body, secret))
    except Exception:  # a notification must never fail the operation that committed
        log.exception("notification %s not queued", event)


def flush(timeout: float | None = None) -> bool:
    """Wait until every queued notification was sent or given up; False on time-out."""
    return _SENDER.wait(timeout)


def _deliver(job: _Job) -> None:
    where = urlsplit(job.config.url).hostname or "?"
    secret = job.secret
    if secret is None:
        log.warning("notification %s for action %d not sent: the signing secret is missing"
                    " (set the environment variable %s)", job.event, job.action_id,
                    job.config.secret_env)
        return
    headers = {EVENT_HEADER: job.event}
    for attempt in range(1, ATTEMPTS + 1):
        after: str | None = None
        try:
            answer = deliver(job.config.url, job.body, secret, headers=headers, key=job.key,
                             timeout=job.config.timeout, attempts=1)
        except DeliveryError as exc:
            why = str(exc)
        else:
            if 200 <= answer.status < 300:
                return
            why = f"HTTP {answer.status}"
            after = answer.headers.get("retry-after")
        if attempt == ATTEMPTS:
            log.error("notification %s for action %d to %s failed %d times, given up: %s",
                      job.event, job.action_id, where, ATTEMPTS, why)
            return
        delay = retry_delay(after, attempt - 1, BACKOFF)
        log.warning("notification %s for action %d to %s failed (attempt %d of %d): %s;"
                    " again in %.1f s", job.event, job.action_id, where, attempt, ATTEMPTS,
                    why, delay)
        _SENDER.sleep(delay)


class _Sender:
    """One non-daemon thread that drains the jobs and ends when none are left."""

    def __init__(self) -> None:
        self._jobs: deque[_Job] = deque()
        self._busy = 0  # jobs queued or being sent
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def put(self, job: _Job) -> None:
        with self._cond:
            self._jobs.append(job)
            self._busy += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="airgate-notify")
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._jobs:
                    self._thread = None  # under the lock: a later put starts a new thread
                    return
                job = self._jobs.popleft()
            try:
                _deliver(job)
            except Exception:
                log.exception("notification %s for action %d failed", job.event, job.action_id)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def wait(self, timeout: float | None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._busy == 0, timeout)

    @staticmethod
    def sleep(seconds: float) -> None:
        threading.Event().wait(seconds)


_SENDER = _Sender()
