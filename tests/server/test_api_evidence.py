"""Evidence over HTTP in every format the CLI reads, bad evidence as located 400s, and
a hostile huge body refused with 413 before it is read whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server_helpers import Server, investigation, serve

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def srv(tmp_path: Path):  # type: ignore[no-untyped-def]
    with serve(tmp_path, policy=(ROOT / "policies" / "endpoint.yaml").read_text()) as server:
        yield server


def post(srv: Server, path: str, body: bytes, content_type: str, actor: str = "bob",
         **params: str):  # type: ignore[no-untyped-def]
    return srv.client.post(path, content=body, params=params,
                           headers={**srv.as_(actor), "Content-Type": content_type})


def test_a_graph_alert_submits_like_the_cli(srv: Server) -> None:
    alert = (ROOT / "examples" / "alerts.ndjson").read_bytes().splitlines()[0]
    response = post(srv, "/api/v1/evidence", alert, "application/json")
    assert response.status_code == 200, response.text
    result = response.json()
    assert {o["action_type"] for o in result["outcomes"]} >= {"isolate_device",
                                                               "quarantine_file"}
    assert result["investigations"] == [result["outcomes"][0]["investigation"]]


@pytest.mark.parametrize("name, content_type", [
    ("examples/alerts.ndjson", "application/x-ndjson"),
    ("examples/alerts.ndjson", "application/json"),  # told apart from the body
    ("tests/data/evidence/graph-list.json", "application/json"),
    ("examples/investigation.yaml", "application/yaml"),
])
def test_every_format_evaluates_to_the_decisions_the_library_gives(
        srv: Server, name: str, content_type: str) -> None:
    from airgate.engine.decision_json import decision_to_dict
    from airgate.evidence.reader import load_evidence

    expected = [decision_to_dict(d, srv.ctx.policy_set.catalog)
                for d in srv.ctx.engine.evaluate(load_evidence(ROOT / name))]
    response = post(srv, "/api/v1/evaluate", (ROOT / name).read_bytes(), content_type)
    assert response.status_code == 200, response.text
    assert response.json()["decisions"] == expected
    listed = srv.client.get("/api/v1/actions", headers=srv.as_("bob")).json()
    assert listed["items"] == []  # evaluate enqueues nothing


def test_bad_evidence_is_a_located_400(srv: Server) -> None:
    response = post(srv, "/api/v1/evidence", b'{"apiVersion": "airgate/v1", "kind":'
                    b' "Investigation", "id": "i", "evidence": [{"type": "device"}]}',
                    "application/json")
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "schema" and body["detail"].startswith("<request>")
    assert body["location"]["json_path"].startswith("$.evidence[0]")


def test_malformed_json_is_400_not_500(srv: Server) -> None:
    response = post(srv, "/api/v1/evidence", b'{"value": [', "application/json")
    assert response.status_code == 400 and response.json()["detail"].startswith("<request>:1")


def test_strict_refuses_warnings_and_submits_nothing(srv: Server) -> None:
    doc = json.dumps({"value": []}).encode()
    response = post(srv, "/api/v1/evidence", doc, "application/json", strict="true")
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "strict" and body["findings"][0]["code"] == "no-evidence"
    lenient = post(srv, "/api/v1/evidence", doc, "application/json")
    assert lenient.status_code == 200
    assert [w["code"] for w in lenient.json()["warnings"]] == ["no-evidence"]


def test_evidence_text_comes_back_as_json_data(srv: Server) -> None:
    hostile = investigation(name="ws1\x1b[31m<script>\r\nX-Evil: 1")
    srv.submit(hostile)
    response = srv.client.get("/api/v1/actions/1", headers=srv.as_("alice"))
    assert response.json()["action"]["entity_name"] == "ws1\x1b[31m<script>\r\nX-Evil: 1"
    assert "x-evil" not in response.headers


def test_a_huge_body_is_413_before_it_is_read(tmp_path: Path) -> None:
    with serve(tmp_path, max_body_bytes=1000) as srv:
        big = b'{"value": [' + b" " * 2000 + b"]}"
        declared = post(srv, "/api/v1/evidence", big, "application/json")
        assert declared.status_code == 413
        assert declared.json()["detail"].startswith(
            "the request body is larger than the server takes (1000 bytes)")

        def chunks():  # type: ignore[no-untyped-def]
            for _ in range(5):
                yield b" " * 500

        streamed = srv.client.post("/api/v1/evidence", content=chunks(),
                                   headers={**srv.as_("bob"), "Content-Type": "application/json"})
        assert streamed.status_code == 413
        assert srv.client.get("/api/v1/actions", headers=srv.as_("bob")).json()["items"] == []


def test_an_unexpected_failure_is_a_500_problem_without_a_traceback(
        srv: Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(type(srv.ctx.engine), "evaluate", broken)
    response = post(srv, "/api/v1/evaluate", b"{}", "application/json")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert "secret internals" in caplog.text


@pytest.mark.parametrize("processes, closes", [(1, False), (2, True)])
def test_evidence_answers_close_the_connection_only_when_processes_share_the_port(
        tmp_path: Path, processes: int, closes: bool) -> None:
    # serve --workers N: a client's next batch goes to whichever process accepts it.
    alert = (ROOT / "examples" / "alerts.ndjson").read_bytes().splitlines()[0]
    with serve(tmp_path, policy=(ROOT / "policies" / "endpoint.yaml").read_text(),
               processes=processes) as server:
        for path in ("/api/v1/evidence", "/api/v1/evaluate"):
            response = post(server, path, alert, "application/json")
            assert response.status_code == 200, response.text
            assert (response.headers.get("connection") == "close") is closes
        assert server.client.get("/api/v1/whoami",
                                 headers=server.as_("bob")).headers.get("connection") is None


def test_serve_workers_hands_the_process_count_to_each_process() -> None:
    from airgate.server.app import settings_env
    from airgate.server.context import ServerSettings

    assert json.loads(settings_env(ServerSettings(processes=3)))["processes"] == 3
