"""Notifications through the Queue: pending, expired and failed reach a signed webhook, and
a receiver that is down, failing or slow never blocks or fails the queue operation."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from airgate.runtime import notify
from airgate.runtime.config import Config, NotifyConfig, load_config
from airgate.runtime.executors import ExecRequest, ExecResult
from airgate.runtime.executors.http import verify
from runtime_helpers import USERS, decision, make_queue
from webhook_server import Reply, webhook

TIMEOUT = 20  # seconds a slow receiver's notification may take per attempt
SECRET = "notify-secret-never-shown"  # noqa: S105 (a test secret)


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_SECRET", SECRET)
    monkeypatch.setattr(notify, "BACKOFF", 0.01)  # retries in hundredths, not seconds


class Failing:
    name = "fake"

    def run(self, request: ExecRequest) -> ExecResult:
        return ExecResult(False, None, "device offline\x1b[2J", self.name)


def queue_for(store_url, url: str, timeout: float = 5, **kw):  # type: ignore[no-untyped-def]
    config = Config(users=USERS, notifications=NotifyConfig(
        url, "CHAT_SECRET", link="https://airgate.example/actions/{id}", timeout=timeout, **kw))
    return make_queue(store_url, config=config, executors={"isolate_device": Failing()})


def bodies(hook) -> list[dict]:  # type: ignore[no-untyped-def]
    return [json.loads(r.body) for r in hook.requests]


def test_pending_expired_and_failed_are_sent_signed_with_a_link(store_url):
    with webhook() as hook:
        queue, clock = queue_for(store_url, hook.url + "/chat")
        a, b = queue.submit([decision("d1", required=True, expires_after=3600),
                             decision("d2", required=True)], actor="bob")
        assert notify.flush(10)
        queue.approve([b.action_id], actor="alice")  # the fake executor fails
        clock.advance(7200)
        assert queue.expire() == [a.action_id]
        assert notify.flush(10)
    got = sorted(((m["event"], m["action"]["id"], m["action"]["status"], m["link"])
                  for m in bodies(hook)), key=str)
    link = "https://airgate.example/actions/{}".format
    assert got == sorted([("pending", a.action_id, "pending", link(a.action_id)),
                          ("pending", b.action_id, "pending", link(b.action_id)),
                          ("failed", b.action_id, "failed", link(b.action_id)),
                          ("expired", a.action_id, "expired", link(a.action_id))], key=str)
    for req in hook.requests:
        assert req.path == "/chat"
        assert req.headers["x-airgate-event"] == json.loads(req.body)["event"]
        assert verify(SECRET.encode(), req.headers["x-airgate-timestamp"], req.body,
                      req.headers["x-airgate-signature"])
    failed = next(m for m in bodies(hook) if m["event"] == "failed")
    assert failed["action"]["entity"] == {"type": "device", "key": "d2", "name": "name-d2"}
    assert failed["action"]["error"] == "device offline\x1b[2J"  # data, in JSON
    assert "\x1b" not in failed["text"] and "device offline\\e[2J" in failed["text"]


def test_a_redo_is_a_new_pending_action_and_is_sent(store_url):
    with webhook() as hook:
        queue, _ = queue_for(store_url, hook.url, events=("pending",))
        [out] = queue.submit([decision("d1", required=True)], actor="bob")
        queue.reject([out.action_id], actor="alice", reason="wrong action")
        created = queue.redo(out.action_id, action_type="restrict_code_execution",
                             actor="carol")
        assert notify.flush(10)
    assert [(m["event"], m["action"]["id"]) for m in bodies(hook)] == [
        ("pending", out.action_id), ("pending", created.id)]


def test_only_the_configured_events_are_sent(store_url):
    with webhook() as hook:
        queue, _ = queue_for(store_url, hook.url, events=("failed",))
        [out] = queue.submit([decision("d1", required=True)], actor="bob")
        queue.approve([out.action_id], actor="alice")
        assert notify.flush(10)
    assert [m["event"] for m in bodies(hook)] == ["failed"]


def test_a_failing_receiver_is_retried_logged_and_does_not_fail_submit(store_url, caplog):
    caplog.set_level(logging.WARNING, logger="airgate.runtime.notify")
    with webhook() as hook:
        hook.replies = [Reply(500, b"boom", {})]
        queue, _ = queue_for(store_url, hook.url)
        [out] = queue.submit([decision("d1", required=True)], actor="bob")
        assert notify.flush(10)
    assert queue.get(out.action_id).status == "pending"
    assert len(hook.requests) == notify.ATTEMPTS
    keys = {r.headers["idempotency-key"] for r in hook.requests}
    assert keys == {f"airgate:{out.action_id}:notify:pending:1"}  # one notification, retried
    assert "failed 3 times, given up: HTTP 500" in caplog.text
    assert SECRET not in caplog.text


def test_a_receiver_that_is_down_does_not_fail_approve(store_url, caplog):
    caplog.set_level(logging.WARNING, logger="airgate.runtime.notify")
    with webhook() as hook:
        url = hook.url
    queue, _ = queue_for(store_url, url)  # nothing listens there any more
    [out] = queue.submit([decision("d1", required=True)], actor="bob")
    [done] = queue.approve([out.action_id], actor="alice")
    assert notify.flush(10)
    assert done.status == "failed" and done.error == "device offline\x1b[2J"
    assert "cannot reach 127.0.0.1" in caplog.text
    assert SECRET not in caplog.text


def test_a_slow_receiver_does_not_hold_up_submit_or_expire(store_url):
    hold = threading.Event()
    with webhook() as hook:
        hook.replies = [Reply(hold=hold)]
        queue, clock = queue_for(store_url, hook.url, timeout=TIMEOUT)
        [out] = queue.submit([decision("d1", required=True, expires_after=60)], actor="bob")
        clock.advance(120)
        assert queue.expire() == [out.action_id]
        # Both operations returned while the receiver still holds the first request (sent
        # in-line, each would have waited out its attempts' time-outs first).
        assert hook.wait_for(1)
        assert (len(hook.requests), hook.answered) == (1, 0)
        assert queue.get(out.action_id).status == "expired"
        hold.set()
        assert notify.flush(10)
    assert hook.answered == 2


def test_a_missing_secret_is_logged_and_nothing_is_sent(store_url, caplog, monkeypatch):
    monkeypatch.delenv("CHAT_SECRET")
    caplog.set_level(logging.WARNING, logger="airgate.runtime.notify")
    with webhook() as hook:
        queue, _ = queue_for(store_url, hook.url)
        queue.submit([decision("d1", required=True)], actor="bob")
        assert notify.flush(10)
    assert hook.requests == []
    assert "set the environment variable CHAT_SECRET" in caplog.text


def test_notifications_are_part_of_the_governing_config(tmp_path):
    path = tmp_path / "airgate.yaml"
    path.write_text("notifications:\n  url: https://chat.example/hook\n  secret_env: CHAT\n"
                    "  events: [pending]\n  link: https://airgate.example/actions/{id}\n")
    config = load_config(path)
    assert config.notifications == NotifyConfig(
        "https://chat.example/hook", "CHAT", ("pending",), "https://airgate.example/actions/{id}")
    assert config.sets_governing()
    assert "notifications" in config.data


@pytest.mark.postgres
def test_notifications_on_postgresql(postgres_url):
    from airgate.runtime.clock import FixedClock
    from airgate.runtime.queue import Queue
    from runtime_helpers import open_store

    with webhook() as hook:
        config = Config(users=USERS, notifications=NotifyConfig(hook.url, "CHAT_SECRET"))
        queue = Queue(open_store(postgres_url), config=config,
                      clock=FixedClock("2024-05-01T12:00:00Z"),
                      executors={"isolate_device": Failing()})
        [out] = queue.submit([decision("pa", required=True)], actor="bob")
        queue.approve([out.action_id], actor="alice")
        assert notify.flush(10)
    assert [(m["event"], m["action"]["id"]) for m in bodies(hook)] == [
        ("pending", out.action_id), ("failed", out.action_id)]
