"""The queue over HTTP: every endpoint, and every refusal as problem JSON with the
CLI's message (403 role or separation of duties, 409 transition, 404, 400/422)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from airgate.runtime.queue import Queue
from server_helpers import POLICY, Server, investigation, serve

QUORUM_POLICY = POLICY.replace("      approval: required\n",
                               "      approval: {roles: [active-remediation], quorum: 2}\n", 1)


@pytest.fixture
def srv(tmp_path: Path):  # type: ignore[no-untyped-def]
    with serve(tmp_path) as server:
        yield server


def problem(response, status: int) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["type"].startswith("https://")
    return body  # type: ignore[no-any-return]


def test_submit_returns_what_each_decision_became(srv: Server) -> None:
    body = srv.submit(investigation())
    got = [(o["outcome"], o["action_id"], o["status"], o["action_type"], o["entity_name"],
            o["excluded_by"]) for o in body["outcomes"]]
    assert got == [("created", 1, "pending", "isolate_device", "ws1", []),
                   ("excluded", None, None, "isolate_device", "dc01", ["t.no-dc"]),
                   ("created", 2, "completed", "quarantine_file", "evil.exe", [])]
    assert "decision" not in body["outcomes"][0]
    assert body["investigations"] == ["inv-7"] and body["warnings"] == []
    again = srv.client.post("/api/v1/evidence", params={"full": "true"},
                            json=investigation(), headers=srv.as_("bob")).json()
    assert [o["outcome"] for o in again["outcomes"]] == ["unchanged", "excluded", "unchanged"]
    first = again["outcomes"][0]
    assert first["action"]["id"] == 1 and first["decision"]["rules"] == ["t.isolate"]


def test_the_submitter_is_the_tokens_actor_in_the_ledger(srv: Server) -> None:
    srv.submit(investigation(), actor="carol")
    story = srv.client.get("/api/v1/actions/1", headers=srv.as_("alice")).json()
    assert story["action"]["submitted_by"] == "carol"
    assert story["ledger"][0]["event"] == "created" and story["ledger"][0]["actor"] == "carol"
    assert story["evidence"][0]["data"]["name"] == "ws1"


def test_an_action_in_the_api_has_every_field_the_library_gives_it(srv: Server) -> None:
    # The API's Action model is written out for the OpenAPI document; a field added to
    # ActionRecord but not to the model would be dropped from every answer unnoticed.
    srv.submit(investigation())
    shown = srv.client.get("/api/v1/actions/1", headers=srv.as_("alice")).json()["action"]
    listed = srv.client.get("/api/v1/actions", headers=srv.as_("alice")).json()["items"]
    record = Queue(srv.ctx.store).get(1).as_dict()
    assert set(shown) == set(record)
    assert {k: v for k, v in listed[-1].items() if k in record} == record


def test_list_filters_and_pages_with_an_opaque_cursor(srv: Server) -> None:
    for n in range(5):
        srv.submit(investigation(f"inv-{n}", device=f"d{n}", name=f"ws{n}"))
    h = srv.as_("alice")
    seen, cursor, pages = [], None, 0
    while True:
        params = {"action_type": "isolate_device", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = srv.client.get("/api/v1/actions", params=params, headers=h).json()
        seen += [a["id"] for a in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [1, 3, 5, 7, 9] and pages == 3
    done = srv.client.get("/api/v1/actions", params={"status": "completed"}, headers=h).json()
    assert {a["action_type"] for a in done["items"]} == {"quarantine_file"}
    one = srv.client.get("/api/v1/actions", params={"investigation": "inv-3"}, headers=h)
    assert [a["id"] for a in one.json()["items"]] == [7]


@pytest.mark.parametrize("params, detail", [
    ({"cursor": "nonsense"},
     "malformed cursor: pass the next_cursor of the previous page as it is"),
    ({"since": "yesterday"},
     "malformed time 'yesterday': write ISO 8601, like 2024-05-01T12:00:00Z"),
])
def test_bad_list_parameters_are_400(srv: Server, params: dict[str, str], detail: str) -> None:
    body = problem(srv.client.get("/api/v1/actions", params=params, headers=srv.as_("alice")),
                   400)
    assert body["detail"] == detail


def test_a_parameter_outside_the_schema_is_422(srv: Server) -> None:
    body = problem(srv.client.get("/api/v1/actions", params={"status": "bogus"},
                                  headers=srv.as_("alice")), 422)
    assert body["code"] == "validation" and body["detail"].startswith("query.status.0:")


def test_show_of_an_unknown_action_is_404(srv: Server) -> None:
    body = problem(srv.client.get("/api/v1/actions/42", headers=srv.as_("alice")), 404)
    assert body["detail"] == "no action 42"


def test_approve_runs_the_action_and_records_the_approver(srv: Server) -> None:
    srv.submit(investigation())
    response = srv.client.post("/api/v1/actions/approve", json={"ids": [1], "comment": "ok"},
                               headers=srv.as_("alice"))
    assert response.status_code == 200, response.text
    [done] = response.json()
    assert (done["status"], done["decided_by"]) == ("completed", "alice")
    story = srv.client.get("/api/v1/actions/1", headers=srv.as_("alice")).json()
    assert story["approvals"][0]["actor"] == "alice"
    assert [e["event"] for e in story["ledger"]] == ["created", "approved", "started",
                                                     "completed"]


def test_approve_without_the_role_is_403_and_the_refusal_is_ledgered(srv: Server) -> None:
    srv.submit(investigation())
    body = problem(srv.client.post("/api/v1/actions/approve", json={"ids": [1]},
                                   headers=srv.as_("dave")), 403)
    assert body["detail"] == ("cannot approve action 1: dave holds search-and-purge;"
                              " approving isolate_device needs one of: active-remediation")
    story = srv.client.get("/api/v1/actions/1", headers=srv.as_("alice")).json()
    assert (story["ledger"][-1]["event"], story["ledger"][-1]["actor"]) == ("refused", "dave")
    assert story["action"]["status"] == "pending"


def test_approving_ones_own_manual_submission_is_403(srv: Server) -> None:
    srv.submit(investigation(), actor="alice")
    body = problem(srv.client.post("/api/v1/actions/approve", json={"ids": [1]},
                                   headers=srv.as_("alice")), 403)
    assert body["detail"] == ("cannot approve action 1: alice submitted this manual action"
                              " and cannot approve it")


def test_a_second_approval_by_the_same_person_does_not_make_a_quorum(tmp_path: Path) -> None:
    with serve(tmp_path, policy=QUORUM_POLICY) as srv:
        srv.submit(investigation())
        first = srv.client.post("/api/v1/actions/approve", json={"ids": [1]},
                                headers=srv.as_("alice"))
        assert first.status_code == 200 and first.json()[0]["status"] == "pending"
        body = problem(srv.client.post("/api/v1/actions/approve", json={"ids": [1]},
                                       headers=srv.as_("alice")), 403)
        assert "alice already approved it; its quorum needs 2 distinct" in body["detail"]
        second = srv.client.post("/api/v1/actions/approve", json={"ids": [1]},
                                 headers=srv.as_("carol"))
        assert second.json()[0]["status"] == "completed"


def test_approving_a_settled_action_is_409(srv: Server) -> None:
    srv.submit(investigation())
    body = problem(srv.client.post("/api/v1/actions/approve", json={"ids": [2]},
                                   headers=srv.as_("alice")), 409)
    assert body["code"] == "transition"
    assert body["detail"] == ("cannot approve action 2 (quarantine_file on evil.exe):"
                              " it is completed")


def test_approve_by_investigation_and_its_refusals(srv: Server) -> None:
    srv.submit(investigation())
    h = srv.as_("alice")
    both = problem(srv.client.post("/api/v1/actions/approve",
                                   json={"ids": [1], "investigation": "inv-7"}, headers=h), 400)
    assert both["detail"] == "approve either ids or investigation, not both"
    none = problem(srv.client.post("/api/v1/actions/approve", json={}, headers=h), 400)
    assert none["detail"].startswith("name the actions to approve")
    empty = problem(srv.client.post("/api/v1/actions/approve",
                                    json={"investigation": "inv-9"}, headers=h), 409)
    assert empty["detail"] == "no pending action in investigation inv-9"
    done = srv.client.post("/api/v1/actions/approve", json={"investigation": "inv-7"},
                           headers=h)
    assert [a["id"] for a in done.json()] == [1]


def test_an_unknown_body_field_is_422(srv: Server) -> None:
    body = problem(srv.client.post("/api/v1/actions/approve", json={"idz": [1]},
                                   headers=srv.as_("alice")), 422)
    assert body["detail"].startswith("body.idz:")


def test_reject_needs_a_reason_and_settles_the_action(srv: Server) -> None:
    srv.submit(investigation())
    h = srv.as_("alice")
    problem(srv.client.post("/api/v1/actions/reject", json={"ids": [1]}, headers=h), 422)
    done = srv.client.post("/api/v1/actions/reject", json={"ids": [1], "reason": "benign"},
                           headers=h)
    assert done.status_code == 200
    assert (done.json()[0]["status"], done.json()[0]["reason"]) == ("rejected", "benign")
    again = problem(srv.client.post("/api/v1/actions/reject",
                                    json={"ids": [1], "reason": "x"}, headers=h), 409)
    assert again["detail"].endswith("it is rejected")


def test_undo_then_redo_and_the_history_says_who_undid(srv: Server) -> None:
    srv.submit(investigation())
    h = srv.as_("alice")
    undone = srv.client.post("/api/v1/actions/undo", json={"ids": [2], "all_instances": True},
                             headers=h)
    assert undone.status_code == 200, undone.text
    assert [a["status"] for a in undone.json()] == ["undone"]
    again = problem(srv.client.post("/api/v1/actions/undo", json={"ids": [2]}, headers=h), 409)
    assert "it is undone" in again["detail"]
    page = srv.client.get("/api/v1/history", headers=h).json()
    assert [(a["id"], a["status"], a["undone_by"]) for a in page["items"]] == [
        (2, "undone", "alice")]  # action 1 is still pending
    pending = problem(srv.client.post("/api/v1/actions/1/redo",
                                      json={"action_type": "contain_device"}, headers=h), 409)
    assert pending["detail"].startswith("cannot redo action 1: it is pending;")
    srv.client.post("/api/v1/actions/reject", json={"ids": [1], "reason": "wrong action"},
                    headers=h)
    redone = srv.client.post("/api/v1/actions/1/redo", json={"action_type": "contain_device"},
                             headers=h)
    assert redone.status_code == 200, redone.text
    assert (redone.json()["action_type"], redone.json()["link_id"]) == ("contain_device", 1)
    unknown = problem(srv.client.post("/api/v1/actions/99/redo",
                                      json={"action_type": "contain_device"}, headers=h), 404)
    assert unknown["detail"] == "no action 99"


def test_history_exports_csv_with_cells_a_spreadsheet_will_not_run(srv: Server) -> None:
    evil = investigation(name="=HYPERLINK(\"http://x\")", device="d1")
    evil["evidence"] = evil["evidence"][:1]
    srv.submit(evil)
    h = srv.as_("alice")
    srv.client.post("/api/v1/actions/reject", json={"ids": [1], "reason": "@SUM(1)"}, headers=h)
    response = srv.client.get("/api/v1/history", params={"format": "csv"}, headers=h)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][-1] == "undone by"
    assert rows[1][5] == "'=HYPERLINK(\"http://x\")" and rows[1][-2] == "'@SUM(1)"


def test_history_pages_newest_first(srv: Server) -> None:
    for n in range(3):
        srv.submit(investigation(f"inv-{n}", device=f"d{n}", name=f"ws{n}"))
        srv.advance(60)
    h = srv.as_("alice")
    first = srv.client.get("/api/v1/history", params={"limit": 2}, headers=h).json()
    rest = srv.client.get("/api/v1/history", params={"cursor": first["next_cursor"]},
                          headers=h).json()
    assert [a["id"] for a in first["items"] + rest["items"]] == [6, 4, 2]
    assert rest["next_cursor"] is None


def test_investigations_have_a_derived_status(srv: Server) -> None:
    srv.submit(investigation())
    rows = srv.client.get("/api/v1/investigations", headers=srv.as_("alice")).json()
    assert [(r["investigation"], r["status"], r["actions"]) for r in rows] == [
        ("inv-7", "pending approval", 2)]


def test_ledger_verify_reports_an_intact_chain(srv: Server) -> None:
    srv.submit(investigation())
    report = srv.client.get("/api/v1/ledger/verify", headers=srv.as_("alice")).json()
    assert report["ok"] is True and report["entries"] > 0 and report["state"] == []


def test_the_openapi_document_describes_every_endpoint(srv: Server) -> None:
    assert srv.client.get("/api/v1/openapi.json").status_code == 401
    doc = srv.client.get("/api/v1/openapi.json", headers=srv.as_("alice")).json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) >= {
        "/api/v1/evidence", "/api/v1/evaluate", "/api/v1/actions", "/api/v1/actions/{action_id}",
        "/api/v1/actions/approve", "/api/v1/actions/reject", "/api/v1/actions/undo",
        "/api/v1/actions/{action_id}/redo", "/api/v1/history", "/api/v1/investigations",
        "/api/v1/ledger/verify", "/healthz", "/metrics"}
    assert "Action" in doc["components"]["schemas"]
    refused = doc["paths"]["/api/v1/actions/approve"]["post"]["responses"]["409"]
    assert list(refused["content"]) == ["application/problem+json"]
