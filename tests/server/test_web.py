"""The web Action Center through FastAPI's TestClient: sign-in and its cookie, CSRF,
the sign-in limit, escaping of hostile evidence, approve/reject/undo as the token's
actor, bulk, filters, CSV and live counts."""

from __future__ import annotations

import csv
import html
import io
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from airgate.runtime import tokens
from runtime_helpers import events
from web_helpers import FILE_NAME, SUBJECT, Browser, alert, submit, web


def _set_cookie(response: object, name: str) -> str:
    headers = response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    [found] = [h for h in headers if h.startswith(f"{name}=")]
    return str(found)


# ---------------------------------------------------------------- sign-in
def test_sign_in_sets_a_strict_httponly_session_cookie_that_is_not_the_token(
        tmp_path: Path) -> None:
    with web(tmp_path) as (srv, browser):
        raw = srv.token("dave")
        response = browser.sign_in_with(raw)
        assert response.status_code == 303
        assert response.headers["location"] == "/actions/pending"
        cookie = _set_cookie(response, "airgate_session")
        flags = [p.strip().lower() for p in cookie.split(";")]
        assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
        assert "secure" not in flags  # plain http: a Secure cookie would never come back
        assert raw not in cookie and raw[4:12] not in cookie
        page = browser.client.get("/actions/pending")
    assert page.status_code == 200 and "Signed in as <b>dave</b>" in page.text


def test_over_https_the_session_cookie_is_secure(tmp_path: Path) -> None:
    with web(tmp_path) as (srv, _browser):
        client = TestClient(srv.client.app, base_url="https://testserver")
        form = client.get("/signin")
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        response = client.post("/signin", data={"token": srv.token("dave"), "csrf": csrf},
                               follow_redirects=False)
    assert response.status_code == 303
    assert "secure" in [p.strip().lower() for p in
                        _set_cookie(response, "airgate_session").split(";")]


def test_pages_without_a_session_send_the_browser_to_sign_in(tmp_path: Path) -> None:
    with web(tmp_path) as (srv, _browser):
        for path in ("/actions/pending", "/actions/history", "/actions/1",
                     "/investigations/alert-1", "/actions/pending.csv"):
            response = srv.client.get(path, follow_redirects=False)
            assert (response.status_code, response.headers["location"]) == (303, "/signin"), path
        assert srv.client.get("/web/counts").status_code == 401
        # A forged cookie is no session either.
        srv.client.cookies.set("airgate_session", "eyJ0IjoiMSJ9.forged")
        assert srv.client.get("/actions/pending", follow_redirects=False).status_code == 303


def test_a_wrong_token_is_refused_and_the_sixth_failure_in_a_minute_is_429(
        tmp_path: Path) -> None:
    with web(tmp_path) as (srv, browser):
        good = srv.token("dave")
        for n in range(5):
            response = browser.sign_in_with(f"agt_wrong{n}")
            assert response.status_code == 401
            assert "Sign-in refused: unknown token." in response.text
        response = browser.sign_in_with(good)
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
    assert "Too many failed sign-ins from this address: try again in" in response.text
    assert "airgate_session=" not in response.headers.get("set-cookie", "")


def test_the_sign_in_form_needs_its_csrf_token(tmp_path: Path) -> None:
    with web(tmp_path) as (srv, _browser):
        response = srv.client.post("/signin", data={"token": srv.token("dave")},
                                   follow_redirects=False)
    assert response.status_code == 403
    assert "The sign-in form expired or came from another site" in response.text


def test_revoking_the_token_ends_the_session_and_signing_out_ends_it_too(
        tmp_path: Path) -> None:
    with web(tmp_path) as (srv, browser):
        browser.sign_in("dave")
        assert browser.client.get("/actions/pending").status_code == 200
        [row] = tokens.list_tokens(srv.ctx.store)
        tokens.revoke(srv.ctx.store, row.id, by="root", now=srv.clock.now())
        assert browser.client.get("/actions/pending",
                                  follow_redirects=False).status_code == 303
        browser.sign_in("dave")
        out = browser.post("/signout", {}, follow=False)
        assert (out.status_code, out.headers["location"]) == (303, "/signin")
        assert browser.client.get("/actions/pending",
                                  follow_redirects=False).status_code == 303


# ---------------------------------------------------------------- headers, CSRF, escaping
def test_every_page_has_a_csp_without_inline_script(tmp_path: Path) -> None:
    with web(tmp_path) as (srv, browser):
        ids = submit(srv, alert())
        browser.sign_in("dave")
        for path in ("/signin", "/actions/pending", "/actions/history",
                     f"/actions/{ids['soft_delete_email']}", "/investigations/alert-1"):
            response = browser.client.get(path)
            assert response.status_code == 200, path
            csp = response.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "same-origin"
            # The only script is the static file: no inline script, no event handler.
            assert response.text.count("<script") == 1
            assert '<script src="/static/app.js" defer></script>' in response.text


@pytest.mark.parametrize("path", ["/actions/pending?panel={id}", "/actions/{id}",
                                  "/investigations/alert-1", "/actions/pending"])
def test_hostile_evidence_text_is_shown_escaped(tmp_path: Path, path: str) -> None:
    with web(tmp_path) as (srv, browser):
        ids = submit(srv, alert())
        browser.sign_in("dave")
        body = "".join(browser.client.get(path.format(id=ids[kind])).text
                       for kind in ("soft_delete_email", "quarantine_file"))
    assert SUBJECT not in body and FILE_NAME not in body
    assert html.escape(SUBJECT) in body
    assert html.escape(FILE_NAME, quote=True).replace("&quot;", "&#34;") in body


def test_a_post_without_the_sessions_csrf_token_changes_nothing(tmp_path: Path) -> None:
    with web(tmp_path) as (srv, browser):
        email = submit(srv, alert())["soft_delete_email"]
        browser.sign_in("dave")
        for data in ({}, {"csrf": "forged"}):
            response = browser.client.post(f"/actions/{email}/approve", data=data)
            assert response.status_code == 403
            assert "its CSRF token does not match your session" in response.text
        foreign = browser.client.post(f"/actions/{email}/approve",
                                      data={"csrf": browser.csrf()},
                                      headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403
        assert srv.ctx.queue().get(email).status == "pending"


# ---------------------------------------------------------------- changes
def test_approve_as_the_tokens_actor_with_the_role_completes_and_shows_in_history(
        tmp_path: Path) -> None:
    with web(tmp_path) as (srv, browser):
        email = submit(srv, alert())["soft_delete_email"]
        browser.sign_in("dave")
        done = browser.post(f"/actions/{email}/approve", {"comment": "phish", "back": ""})
        assert done.status_code == 200
        assert (f"action {email} (soft_delete_email on analyzedMessage evil@example.net:"
                f" {html.escape(SUBJECT)}): approved and carried out: completed") in done.text
        action = srv.ctx.queue().get(email)
        assert (action.status, action.decided_by) == ("completed", "dave")
        approved = [e for e in srv.ctx.queue().ledger_entries(email) if e.event == "approved"]
        assert [e.actor for e in approved] == ["dave"]
        history = browser.client.get("/actions/history").text
    row = history.split(f'panel={email}">{email}</a>')[1].split("</tr>")[0]
    assert '<span class="status completed">completed</span>' in row and "dave" in row


def test_a_user_without_the_role_is_refused_with_the_reason(tmp_path: Path) -> None:
    with web(tmp_path) as (srv, browser):
        email = submit(srv, alert())["soft_delete_email"]
        browser.sign_in("alice")
        panel = browser.client.get(f"/actions/pending?panel={email}").text
        assert ("You cannot approve or reject this action: alice holds active-remediation;"
                " approving soft_delete_email needs one of: search-and-purge.") in panel
        refused = browser.post(f"/actions/{email}/approve", {})
    assert refused.status_code == 403
    assert (f"cannot approve action {email}: alice holds active-remediation; approving"
            " soft_delete_email needs one of: search-and-purge") in html.unescape(refused.text)
    assert srv.ctx.queue().get(email).status == "pending"
    assert ("refused", "pending", "pending") in events(srv.ctx.queue(), email)


def test_reject_needs_a_reason_and_records_it(tmp_path: Path) -> None:
    with web(tmp_path) as (srv, browser):
        email = submit(srv, alert())["soft_delete_email"]
        browser.sign_in("dave")
        refused = browser.post(f"/actions/{email}/reject", {"reason": "  "})
        assert refused.status_code == 400
        assert "Rejecting needs a reason: write it in the reason field." in refused.text
        assert srv.ctx.queue().get(email).status == "pending"
        done = browser.post(f"/actions/{email}/reject", {"reason": "a newsletter"})
        assert done.status_code == 200 and ": rejected: a newsletter" in done.text
        action = srv.ctx.queue().get(email)
    assert (action.status, action.reason, action.decided_by) == ("rejected", "a newsletter",
                                                                 "dave")


def test_undo_of_a_device_action_and_of_an_email_action(tmp_path: Path) -> None:
    with web(tmp_path) as (srv, browser):
        ids = submit(srv, alert())
        browser.sign_in("root")
        for kind in ("isolate_device", "soft_delete_email"):
            browser.post(f"/actions/{ids[kind]}/approve", {})
        undone = browser.post(f"/actions/{ids['isolate_device']}/undo", {"tab": "history"})
        assert undone.status_code == 200 and ": undone" in undone.text
        assert srv.ctx.queue().get(ids["isolate_device"]).status == "undone"
        history = browser.client.get("/actions/history?status=undone").text
        assert "undone by root" in history
        # Email actions have no undo: their Undo is the opposite move, a new pending action.
        panel = browser.client.get(f"/actions/{ids['soft_delete_email']}").text
        assert "Undo: Move to inbox" in panel
        moved = browser.post(f"/actions/{ids['soft_delete_email']}/undo", {})
        assert moved.status_code == 200
        old = srv.ctx.queue().get(ids["soft_delete_email"])
        assert old.status == "superseded" and old.superseded_by is not None
        new = srv.ctx.queue().get(old.superseded_by)
        # The opposite move is the undoer's manual action: someone else approves it.
        own = browser.post(f"/actions/{new.id}/approve", {})
    assert (new.action_type, new.status, new.link_id) == ("move_to_inbox", "pending", old.id)
    assert f"undone by a new action {new.id} (move_to_inbox): pending approval" in moved.text
    assert own.status_code == 403
    assert f"cannot approve action {new.id}: root submitted this manual action" in own.text


def test_undo_of_a_pending_action_is_a_409(tmp_path: Path) -> None:
    with web(tmp_path) as (srv, browser):
        device = submit(srv, alert())["isolate_device"]
        browser.sign_in("root")
        response = browser.post(f"/actions/{device}/undo", {})
    assert response.status_code == 409
    assert f"cannot undo action {device}" in response.text


def test_bulk_approve_of_one_type_and_refusal_of_mixed_types(tmp_path: Path) -> None:
    with web(tmp_path) as (srv, browser):
        first = submit(srv, alert("alert-1", message="m-1", device="d1"))
        second = submit(srv, alert("alert-2", message="m-2", device="d2"))
        browser.sign_in("root")
        mixed = browser.post("/actions/bulk", {
            "op": "approve", "ids": [first["quarantine_file"], first["soft_delete_email"]]})
        assert mixed.status_code == 400
        assert ("approve several actions at once only when they share an action type;"
                " these are quarantine_file, soft_delete_email") in mixed.text
        queue = srv.ctx.queue()
        assert {queue.get(first[k]).status for k in first} == {"pending"}
        none = browser.post("/actions/bulk", {"op": "reject", "reason": "x"})
        assert none.status_code == 400 and "Select the actions to reject first." in none.text
        same = browser.post("/actions/bulk", {
            "op": "approve", "ids": [first["quarantine_file"], second["quarantine_file"]]})
        assert same.status_code == 200
        assert {queue.get(i).status for i in (first["quarantine_file"],
                                              second["quarantine_file"])} == {"completed"}
        rejected = browser.post("/actions/bulk", {
            "op": "reject", "reason": "lab", "ids": [first["isolate_device"],
                                                     second["isolate_device"]]})
    assert rejected.status_code == 200
    assert {queue.get(i).reason for i in (first["isolate_device"],
                                          second["isolate_device"])} == {"lab"}


# ---------------------------------------------------------------- filters, CSV, counts
def _ids_shown(page: str) -> list[int]:
    return [int(part.split('"')[0]) for part in page.split('name="ids" value="')[1:]]


def test_pending_filters_select_what_the_store_holds(tmp_path: Path) -> None:
    with web(tmp_path) as (srv, browser):
        first = submit(srv, alert("alert-1", message="m-1", device="d1"))
        srv.advance(3600)
        second = submit(srv, alert("alert-2", message="m-2", device="d2"), actor="dave")
        browser.sign_in("root")
        get = browser.client.get

        def shown(query: str) -> list[int]:
            return sorted(_ids_shown(get(f"/actions/pending?{query}").text))

        assert shown("") == sorted([*first.values(), *second.values()])
        assert shown("action_type=quarantine_file") == sorted(
            [first["quarantine_file"], second["quarantine_file"]])
        assert shown("investigation=alert-2") == sorted(second.values())
        assert shown("source=manual") == sorted(second.values())  # dave is no automation
        assert shown("source=automatedInvestigation") == sorted(first.values())
        assert shown("since=2024-05-01T12:30:00Z") == sorted(second.values())
        assert shown("until=2024-05-01T12:30:00Z") == sorted(first.values())
        assert shown("since=30m") == sorted(second.values())
        assert len(shown("limit=2")) == 2
        bad = get("/actions/pending?source=nowhere")
    assert bad.status_code == 400 and "Filter ignored: unknown source" in bad.text


def _history_ids(browser: Browser, query: str) -> list[int]:
    page = browser.client.get(f"/actions/history?{query}").text
    return [int(m) for m in re.findall(r'panel=(\d+)">\1</a>', page)]


def test_history_filters_by_status_and_csv_exports_what_is_shown(tmp_path: Path) -> None:
    with web(tmp_path) as (srv, browser):
        ids = submit(srv, alert(subject="=HYPERLINK(\"http://x\")"))
        browser.sign_in("root")
        browser.post(f"/actions/{ids['soft_delete_email']}/approve", {})
        browser.post(f"/actions/{ids['isolate_device']}/reject", {"reason": "lab"})
        assert _history_ids(browser, "decided_by=ROOT") == [ids["isolate_device"],
                                                            ids["soft_delete_email"]]
        assert _history_ids(browser, "decided_by=dave") == []
        page = browser.client.get("/actions/history?status=rejected").text
        assert f'panel={ids["isolate_device"]}">' in page
        assert f'panel={ids["soft_delete_email"]}">' not in page
        assert 'href="/actions/history.csv?status=rejected"' in page
        rejected = browser.client.get("/actions/history.csv?status=rejected")
        everything = browser.client.get("/actions/history.csv")
    assert rejected.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in rejected.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(rejected.text)))
    assert [(int(r["id"]), r["status"], r["decided by"], r["note"]) for r in rows] == [
        (ids["isolate_device"], "rejected", "root", "lab")]
    all_rows = list(csv.DictReader(io.StringIO(everything.text)))
    assert [int(r["id"]) for r in all_rows] == [ids["isolate_device"], ids["soft_delete_email"]]
    # The subject starts with '=': a spreadsheet must not run it.
    email = next(r for r in all_rows if r["action"] == "soft_delete_email")
    assert email["entity"].startswith("evil@example.net: =HYPERLINK")
    formula = browser.client.get("/actions/history.csv")  # still signed in
    assert formula.status_code == 200


def test_a_csv_cell_that_a_spreadsheet_would_run_is_quoted(tmp_path: Path) -> None:
    with web(tmp_path) as (srv, browser):
        doc = alert()
        doc["id"] = "=cmd|calc"
        submit(srv, doc)
        browser.sign_in("root")
        body = browser.client.get("/actions/pending.csv").text
    rows = list(csv.DictReader(io.StringIO(body)))
    assert {r["investigation"] for r in rows} == {"'=cmd|calc"}


def test_live_counts_of_pending_actions_by_type(tmp_path: Path) -> None:
    with web(tmp_path) as (srv, browser):
        submit(srv, alert("alert-1", message="m-1", device="d1"))
        submit(srv, alert("alert-2", message="m-2", device="d2"))
        browser.sign_in("dave")
        counts = browser.client.get("/web/counts").json()
        page = browser.client.get("/actions/pending").text
    assert counts == {"total": 6, "more": False, "shown": "6", "by_type": [
        {"type": t, "name": name, "n": 2, "more": False, "shown": "2"}
        for t, name in (("isolate_device", "Isolate device"),
                        ("quarantine_file", "Quarantine file"),
                        ("soft_delete_email", "Soft delete email"))]}
    assert '<span class="badge" id="pending-total">6</span>' in page
    assert "Soft delete email <b>2</b>" in page


def test_counts_past_the_cap_say_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airgate.server import webviews

    monkeypatch.setattr(webviews, "COUNT_CAP", 1)
    with web(tmp_path) as (srv, browser):
        submit(srv, alert("alert-1", message="m-1", device="d1"))
        submit(srv, alert("alert-2", message="m-2", device="d2"))
        browser.sign_in("dave")
        counts = browser.client.get("/web/counts").json()
    assert (counts["total"], counts["more"], counts["shown"]) == (3, True, "3+")
    assert {c["shown"] for c in counts["by_type"]} == {"1+"}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_capped_counts_agree_with_exact_ones(tmp_path: Path, backend: str,
                                             request: pytest.FixtureRequest) -> None:
    from airgate.runtime.config import Config
    from airgate.runtime.queue import Queue
    from runtime_helpers import USERS, decision, open_store

    target = (tmp_path / "q.db" if backend == "sqlite"
              else request.getfixturevalue("postgres_url"))
    queue = Queue(open_store(target), config=Config(users=USERS))
    queue.submit([decision(f"d{i}", "isolate_device", investigation=f"i{i}") for i in range(5)]
                 + [decision("f1", "quarantine_file", entity_type="file")], actor="bob")
    queue.reject([1], actor="alice", reason="x")
    assert queue.pending_counts() == {"isolate_device": 4, "quarantine_file": 1}
    assert queue.pending_counts(10) == {"isolate_device": 4, "quarantine_file": 1}
    assert queue.pending_counts(2) == {"isolate_device": 3, "quarantine_file": 1}


def test_the_investigation_page_shows_evidence_decisions_and_actions(tmp_path: Path) -> None:
    with web(tmp_path) as (srv, browser):
        ids = submit(srv, alert())
        browser.sign_in("dave")
        page = browser.client.get("/investigations/alert-1")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "pending approval" in text and "3 action(s)" in text
    for action_id in ids.values():
        assert f'href="/actions/{action_id}"' in page.text
    assert "<code>web.soft-delete</code>" in page.text
    assert "rule web.soft-delete (action): matched" in text
    assert 'verdict in ["malicious", "suspicious"]: held' in text
    assert "networkMessageId" in text and "m-1" in text
    missing = browser.client.get("/investigations/nope")
    assert missing.status_code == 404
    assert "No action belongs to investigation nope: it is unknown" in missing.text
