"""``airgate token create|list|revoke``: the token printed once, only its hash stored,
creation and revocation in the ledger without the token."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from airgate.cli import main
from runtime_helpers import raw_sqlite


def run(tmp: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), env={
        "AIRGATE_DB": str(tmp / "q.db"), "AIRGATE_ACTOR": "root", "AIRGATE_CONFIG": ""})


def test_create_prints_the_token_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    made = run(tmp_path, "token", "create", "--actor", "alice", "--expires", "7d")
    assert made.exit_code == 0, made.stderr
    raw = made.stdout.strip()
    assert raw.startswith("agt_") and len(raw) > 40
    assert "acts as alice" in made.stderr and raw not in made.stderr
    with raw_sqlite(tmp_path / "q.db") as conn:
        dump = "\n".join(conn.iterdump())
    assert raw not in dump
    assert raw[:12] in dump  # the prefix names it
    listed = run(tmp_path, "token", "list", "--format", "json")
    assert listed.exit_code == 0 and raw not in listed.stdout
    [row] = json.loads(listed.stdout)
    assert (row["id"], row["actor"], row["prefix"], row["revoked_at"]) == (1, "alice",
                                                                          raw[:12], None)
    assert row["created_by"] == "root" and row["expires_at"] is not None


def test_revoke_marks_the_token_and_the_ledger_records_both_without_the_token(
        tmp_path: Path) -> None:
    raw = run(tmp_path, "token", "create", "--actor", "alice").stdout.strip()
    revoked = run(tmp_path, "token", "revoke", "1")
    assert revoked.exit_code == 0, revoked.stderr
    assert revoked.stdout.startswith(f"token 1 ({raw[:12]}…) of alice revoked at")
    table = run(tmp_path, "token", "list")
    assert "revoked" in table.stdout
    with raw_sqlite(tmp_path / "q.db") as conn:
        rows = conn.execute("SELECT event, actor, details FROM ledger"
                            " WHERE event LIKE 'token_%' ORDER BY seq").fetchall()
    assert [(e, a) for e, a, _ in rows] == [("token_created", "root"), ("token_revoked", "root")]
    assert all(raw not in d and raw[:12] in d for _, _, d in rows)
    verified = run(tmp_path, "ledger", "verify")
    assert verified.exit_code == 0, verified.stdout + verified.stderr


def test_revoking_an_unknown_token_says_so(tmp_path: Path) -> None:
    run(tmp_path, "token", "create", "--actor", "alice")
    result = run(tmp_path, "token", "revoke", "9")
    assert result.exit_code == 1
    assert result.stderr == "airgate: error: no token 9 (airgate token list shows them)\n"


def test_a_malformed_expiry_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "token", "create", "--actor", "alice", "--expires", "soon")
    assert result.exit_code == 2
    assert result.stderr.startswith("airgate: error: --expires: malformed duration 'soon'")


def test_never_expiring_and_reserved_actor(tmp_path: Path) -> None:
    made = run(tmp_path, "token", "create", "--actor", "alice", "--expires", "never")
    assert made.exit_code == 0 and "expires never" in made.stderr
    refused = run(tmp_path, "token", "create", "--actor", "automation")
    assert refused.exit_code == 2 and "reserved for airgate itself" in refused.stderr


def test_serve_reports_every_policy_finding_and_starts_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: airgate/v1\nkind: Policy\nmetadata: {name: t}\nspec:\n"
                   "  rules:\n    - id: x\n      match: {verdict: bogus}\n")
    result = run(tmp_path, "serve", "--policy", str(bad))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"airgate: error: {bad}:") for line in lines)
    assert "Traceback" not in result.output
