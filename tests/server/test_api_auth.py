"""Who may call the API: every endpoint but /healthz needs a working token."""

from __future__ import annotations

from pathlib import Path

import pytest

from airgate.runtime import tokens
from server_helpers import serve


def test_healthz_needs_no_token(tmp_path: Path) -> None:
    with serve(tmp_path) as srv:
        response = srv.client.get("/healthz")
        head = srv.client.head("/healthz")  # what many load balancers send
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert head.status_code == 200


@pytest.mark.parametrize("headers, detail", [
    ({}, "no credentials: send Authorization: Bearer <token> (airgate token create makes one)"),
    ({"Authorization": "Bearer nope"}, "not an airgate token (they start with agt_)"),
    ({"Authorization": "Bearer agt_unknown"}, "unknown token"),
])
def test_a_request_without_a_working_token_is_401_problem_json(
        tmp_path: Path, headers: dict[str, str], detail: str) -> None:
    with serve(tmp_path) as srv:
        response = srv.client.get("/api/v1/whoami", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status"] == 401 and body["code"] == "unauthenticated"
    assert body["detail"] == detail


def test_the_token_acts_as_its_actor_with_the_configs_roles(tmp_path: Path) -> None:
    with serve(tmp_path) as srv:
        response = srv.client.get("/api/v1/whoami", headers=srv.as_("alice"))
    assert response.status_code == 200
    assert response.json() == {"actor": "alice", "roles": ["active-remediation"]}


def test_a_revoked_token_is_refused_at_once(tmp_path: Path) -> None:
    with serve(tmp_path) as srv:
        headers = srv.as_("alice")
        assert srv.client.get("/api/v1/whoami", headers=headers).status_code == 200
        [row] = tokens.list_tokens(srv.ctx.store)
        tokens.revoke(srv.ctx.store, row.id, by="root", now=srv.clock.now())
        response = srv.client.get("/api/v1/whoami", headers=headers)
    assert response.status_code == 401
    assert "was revoked at" in response.json()["detail"]
    assert headers["Authorization"].split()[1] not in response.text


def test_an_expired_token_is_refused(tmp_path: Path) -> None:
    with serve(tmp_path) as srv:
        raw = srv.token("alice", expires_in=3600)
        headers = {"Authorization": f"Bearer {raw}"}
        assert srv.client.get("/api/v1/whoami", headers=headers).status_code == 200
        srv.advance(3600)
        response = srv.client.get("/api/v1/whoami", headers=headers)
    assert response.status_code == 401 and "expired at" in response.json()["detail"]


def test_metrics_need_a_token_too(tmp_path: Path) -> None:
    with serve(tmp_path) as srv:
        assert srv.client.get("/metrics").status_code == 401
        response = srv.client.get("/metrics", headers=srv.as_("alice"))
    assert response.status_code == 200
    assert "airgate_request_seconds_bucket" in response.text


def test_an_unknown_path_and_a_wrong_method_are_problem_json(tmp_path: Path) -> None:
    with serve(tmp_path) as srv:
        missing = srv.client.get("/api/v1/nope", headers=srv.as_("alice"))
        wrong = srv.client.delete("/api/v1/actions", headers=srv.as_("alice"))
    assert missing.status_code == 404 and wrong.status_code == 405
    for response in (missing, wrong):
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == response.status_code


def test_a_session_cookie_alone_never_authenticates_the_api(tmp_path: Path) -> None:
    with serve(tmp_path) as srv:
        srv.client.cookies.set("airgate_session", "anything")
        response = srv.client.get("/api/v1/whoami")
        srv.client.cookies.clear()
    assert response.status_code == 401
