"""The http executor: a signed JSON request to the configured URL, against a local receiver."""

from __future__ import annotations

import json
import threading

import pytest

from airgate.errors import InputError
from airgate.runtime.config import Config, ExecutorConfig, load_config
from airgate.runtime.executors import ExecRequest, make_executor
from airgate.runtime.executors.http import HttpExecutor, signature, verify
from runtime_helpers import USERS, decision, make_queue
from webhook_server import Reply, webhook

SECRET = "s3cr3t-value-never-shown"  # noqa: S105 (a test secret)
HOSTILE = "ws1\r\nX-Injected: yes/../../admin?q=1"


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOAR_SECRET", SECRET)


def http_config(url: str, **options: object) -> ExecutorConfig:
    return ExecutorConfig("http", timeout=5, options={
        "url": url, "secret_env": "SOAR_SECRET", **options})


def queue_with(store_url, url: str, **options: object):  # type: ignore[no-untyped-def]
    config = Config(users=USERS, executors={"isolate_device": http_config(url, **options)})
    queue, _ = make_queue(store_url, config=config)
    return queue


def approve_one(queue, key: str = "dev1"):  # type: ignore[no-untyped-def]
    [out] = queue.submit([decision(key, required=True)], actor="bob")
    [done] = queue.approve([out.action_id], actor="alice")
    return done


def test_approve_sends_a_signed_request_with_the_key_and_keeps_the_json_answer(store_url):
    with webhook() as hook:
        queue = queue_with(store_url, hook.url + "/hooks/airgate", method="PUT",
                           headers={"X-Team": "soc"})
        done = approve_one(queue, HOSTILE)
    assert done.status == "completed"
    assert done.result == {"status": 200, "json": {"ticket": "T-1"}}
    [req] = hook.requests
    assert (req.method, req.path) == ("PUT", "/hooks/airgate")
    assert req.headers["content-type"] == "application/json"
    assert req.headers["x-team"] == "soc"
    assert req.headers["idempotency-key"] == f"airgate:{done.id}:apply:2"
    assert "x-injected" not in req.headers  # evidence never becomes a header
    assert req.headers["x-airgate-signature"] == signature(
        SECRET.encode(), req.headers["x-airgate-timestamp"], req.body)
    assert verify(SECRET.encode(), req.headers["x-airgate-timestamp"], req.body,
                  req.headers["x-airgate-signature"])
    assert not verify(b"another secret", req.headers["x-airgate-timestamp"], req.body,
                      req.headers["x-airgate-signature"])
    sent = json.loads(req.body)
    assert sent["operation"] == "apply"
    assert sent["action"]["action_type"] == "isolate_device"
    assert sent["entity"] == {"type": "device", "key": HOSTILE, "name": f"name-{HOSTILE}",
                              "hash": None}
    assert sent["idempotency_key"] == req.headers["idempotency-key"]
    story = json.dumps(queue.show(done.id))
    assert SECRET not in story and "SOAR_SECRET" not in story


def test_a_replayed_timestamp_outside_the_window_does_not_verify():
    body = b"{}"
    stamp = "1700000000"
    header = signature(b"k", stamp, body)
    assert verify(b"k", stamp, body, header, now=1700000000 + 299)
    assert not verify(b"k", stamp, body, header, now=1700000000 + 301)


@pytest.mark.parametrize(("stamp", "header"), [
    ("1700000000", "sha256=\u00e9"), (" 1700000000", None), ("\u0661\u0667", None)])
def test_verify_refuses_odd_headers_without_raising(stamp, header):
    good = signature(b"k", "1700000000", b"{}")
    assert not verify(b"k", stamp, b"{}", header or good, now=1700000000)


def test_429_with_retry_after_is_sent_again_and_then_succeeds(store_url):
    with webhook() as hook:
        hook.replies = [Reply(429, b"slow down", {"Retry-After": "0"}), Reply()]
        done = approve_one(queue_with(store_url, hook.url))
    assert done.status == "completed"
    assert len(hook.requests) == 2
    first, second = hook.requests
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.body == second.body


def test_503_every_time_fails_after_the_bounded_attempts(store_url):
    with webhook() as hook:
        hook.replies = [Reply(503, b"down\x1b[31m for maintenance", {"Retry-After": "0"})]
        done = approve_one(queue_with(store_url, hook.url))
    assert done.status == "failed"
    assert len(hook.requests) == 3
    assert done.error == "HTTP 503: down\\e[31m for maintenance"


def test_a_redirect_is_not_followed(store_url):
    with webhook() as hook:
        hook.replies = [Reply(307, b"", {"Location": hook.url + "/elsewhere"})]
        done = approve_one(queue_with(store_url, hook.url + "/hook"))
    assert done.status == "failed"
    assert "redirect to" in (done.error or "") and "not followed" in (done.error or "")
    assert [r.path for r in hook.requests] == ["/hook"]


def test_an_error_answer_is_quoted_short_and_escaped(store_url):
    with webhook() as hook:
        hook.replies = [Reply(400, b"bad\nrequest " + b"x" * 1000, {})]
        done = approve_one(queue_with(store_url, hook.url))
    assert done.status == "failed"
    assert (done.error or "").startswith("HTTP 400: bad\\nrequest xxx")
    assert (done.error or "").endswith("...") and len(done.error or "") < 260


def test_a_text_answer_is_kept_as_escaped_text(store_url):
    with webhook() as hook:
        hook.replies = [Reply(201, b"created\x07 ok", {"Content-Type": "text/plain"})]
        done = approve_one(queue_with(store_url, hook.url))
    assert done.result == {"status": 201, "text": "created\\x07 ok"}


def test_a_slow_receiver_times_out():
    hold = threading.Event()
    with webhook() as hook:
        hook.replies = [Reply(hold=hold)]
        executor = HttpExecutor(hook.url, secret_env="SOAR_SECRET", timeout=0.3)  # noqa: S106
        result = executor.run(ExecRequest("apply", {"id": 1}, {"key": "d"}, "k1"))
        hold.set()
    assert not result.ok
    assert result.message == "no answer from 127.0.0.1 within 0.3 s"


def test_a_missing_secret_fails_without_sending(store_url, monkeypatch):
    monkeypatch.delenv("SOAR_SECRET")
    with webhook() as hook:
        done = approve_one(queue_with(store_url, hook.url))
    assert done.status == "failed"
    assert done.error == ("the signing secret is missing: set the environment variable"
                          " SOAR_SECRET")
    assert hook.requests == []


def test_an_unreachable_receiver_fails_the_action(store_url):
    with webhook() as hook:
        url = hook.url
    done = approve_one(queue_with(store_url, url))  # the server is gone
    assert done.status == "failed"
    assert (done.error or "").startswith("cannot reach 127.0.0.1: ConnectError")


def test_config_declares_an_http_executor(tmp_path):
    path = tmp_path / "airgate.yaml"
    path.write_text("executors:\n  isolate_device:\n    type: http\n"
                    "    url: https://soar.example/hook\n    secret_env: SOAR_SECRET\n"
                    "    method: PATCH\n    headers: {X-Team: soc}\n    timeout: 15s\n")
    config = load_config(path)
    executor = make_executor(config.executor_for("isolate_device"), None)  # type: ignore[arg-type]
    assert isinstance(executor, HttpExecutor)
    assert (executor.url, executor.method, executor.headers, executor.timeout) == (
        "https://soar.example/hook", "PATCH", {"X-Team": "soc"}, 15)


@pytest.mark.parametrize(("line", "where"), [
    ("    url: file:///etc/passwd\n    secret_env: S\n", ":4:"),
    ("    url: https://user:pw@soar.example/\n    secret_env: S\n", ":4:"),
    ("    url: https://soar.example/\n", ":3:"),
    ("    url: https://soar.example/\n    secret_env: S\n    headers: {X-A: \"a\\nb\"}\n",
     ":6:"),
])
def test_config_refuses_a_bad_http_executor_at_its_location(tmp_path, line, where):
    path = tmp_path / "airgate.yaml"
    path.write_text("executors:\n  isolate_device:\n    type: http\n" + line)
    with pytest.raises(InputError, match="airgate.yaml" + where):
        load_config(path)


def test_the_time_out_bounds_the_retries_too():
    with webhook() as hook:
        hook.replies = [Reply(429, b"busy", {"Retry-After": "10"})]
        executor = HttpExecutor(hook.url, secret_env="SOAR_SECRET", timeout=1)  # noqa: S106
        result = executor.run(ExecRequest("apply", {"id": 1}, {"key": "d"}, "k1"))
    assert (result.ok, result.message) == (False, "HTTP 429: busy")
    assert len(hook.requests) == 1  # a wait past the time-out is not made
