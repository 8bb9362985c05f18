"""``airgate ledger keygen|checkpoint|verify|export``: signed checkpoints, the replay of the
ledger against the tables, JSON and NDJSON output, exit codes and messages."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from airgate.cli import main
from runtime_helpers import raw_sqlite

POLICY = """\
apiVersion: airgate/v1
kind: Policy
metadata: {name: t}
spec:
  rules:
    - id: t.isolate
      match: {verdict: malicious, entity: device}
      action: isolate_device
      approval: {roles: [active-remediation], quorum: 2}
"""

CONFIG = "users:\n  alice: [active-remediation]\n  carol: [active-remediation]\n"


def investigation(inv: str, device: str) -> str:
    return json.dumps({"apiVersion": "airgate/v1", "kind": "Investigation", "id": inv,
                       "evidence": [{"type": "device", "verdict": "malicious", "name": device,
                                     "fields": {"mdeDeviceId": device}}]})


class Env:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        (tmp / "policy.yaml").write_text(POLICY)
        (tmp / "airgate.yaml").write_text(CONFIG)
        self.db = tmp / "q.db"
        self.env = {"AIRGATE_DB": str(self.db), "AIRGATE_CONFIG": str(tmp / "airgate.yaml"),
                    "AIRGATE_NOW": "2024-05-01T12:00:00Z", "AIRGATE_ACTOR": "bob"}
        made = self.run("init", "--demo")  # the tests pin the clock: a demo store lets them
        assert made.exit_code == 0, made.stderr

    def run(self, *args: str, **env: str) -> Result:
        return CliRunner().invoke(main, list(args), env={**self.env, **env})

    def submit(self, device: str = "d1", **env: str) -> Result:
        path = self.tmp / f"{device}.json"
        path.write_text(investigation(f"inv-{device}", device))
        return self.run("submit", str(path), "--policy", str(self.tmp / "policy.yaml"), **env)

    def sql(self, statement: str, *params: object) -> None:
        with raw_sqlite(self.db) as conn:
            conn.execute(statement, params)

    def keygen(self) -> tuple[str, str]:
        key = str(self.tmp / "keys" / "ledger.pem")
        (self.tmp / "keys").mkdir(exist_ok=True)
        result = self.run("ledger", "keygen", "--out", key)
        assert result.exit_code == 0, result.stderr
        return key, key + ".pub"


@pytest.fixture
def cli(tmp_path: Path) -> Env:
    return Env(tmp_path)


def test_keygen_writes_a_private_key_only_its_owner_reads(cli):
    key, pub = cli.keygen()
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert Path(pub).read_text().startswith("-----BEGIN PUBLIC KEY-----")
    again = cli.run("ledger", "keygen", "--out", key)
    assert again.exit_code == 1
    assert "exists: refusing to overwrite a key" in again.stderr


def test_a_key_others_can_read_is_refused(cli):
    key, _ = cli.keygen()
    os.chmod(key, 0o644)
    cli.submit()
    result = cli.run("ledger", "checkpoint", "--key", key)
    assert result.exit_code == 1
    assert "must be readable by its owner only" in result.stderr


def test_checkpoints_to_stdout_and_a_file_then_verify(cli):
    key, pub = cli.keygen()
    cli.submit("d1")
    line = cli.run("ledger", "checkpoint", "--key", key)
    assert line.exit_code == 0, line.stderr
    signed = json.loads(line.stdout)
    assert (signed["seq"], signed["format"]) == (2, "airgate-checkpoint/1")  # 1: init
    out = str(cli.tmp / "checkpoints.ndjson")
    assert cli.run("ledger", "checkpoint", "--key", key, "--out", out).exit_code == 0
    cli.submit("d2")
    assert cli.run("ledger", "checkpoint", "--key", key, "--out", out).exit_code == 0
    assert len(Path(out).read_text().splitlines()) == 2
    result = cli.run("ledger", "verify", "--checkpoint", out, "--public-key", pub)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "ledger ok: 3 entries verified; 2 checkpoints hold, the last at" \
                            " entry 3\n"


def test_a_truncated_ledger_with_its_head_reset_verifies_only_without_the_checkpoint(cli):
    key, pub = cli.keygen()
    cli.submit("d1")
    cli.submit("d2")
    out = str(cli.tmp / "checkpoints.ndjson")
    cli.run("ledger", "checkpoint", "--key", key, "--out", out)
    cli.sql("DELETE FROM ledger WHERE seq = 3")  # entry 1 is the demo store's init
    cli.sql("DELETE FROM actions WHERE id = 2")
    cli.sql("DELETE FROM evidence WHERE action_id = 2")
    cli.sql("UPDATE ledger_head SET seq = 2, hash = (SELECT hash FROM ledger WHERE seq = 2)")
    assert cli.run("ledger", "verify").exit_code == 0  # it agrees with itself
    result = cli.run("ledger", "verify", "--checkpoint", out, "--public-key", pub)
    assert result.exit_code == 1
    assert ("the ledger ends at entry 2 but checkpoint " + out + ":1:1 signed entry 3"
            ) in result.stderr
    # The scheduled checkpoint refuses to sign the shortened ledger.
    again = cli.run("ledger", "checkpoint", "--key", key, "--out", out)
    assert again.exit_code == 1 and "will not sign a broken ledger" in again.stderr


def test_a_lowered_quorum_refuses_approval_and_verify_names_the_action(cli):
    cli.submit()
    cli.sql("UPDATE actions SET approval = replace(approval, '\"quorum\":2', '\"quorum\":1')")
    approve = cli.run("approve", "1", "--actor", "alice")
    assert approve.exit_code == 1
    assert "cannot approve action 1: the store does not match the ledger (its approval quorum" \
           " is 1 in the store but 2 in the ledger)" in approve.stderr
    shown = json.loads(cli.run("show", "1", "--format", "json").stdout)
    assert shown["action"]["status"] == "pending"
    text = cli.run("ledger", "verify")
    assert text.exit_code == 1
    assert "airgate: error: action 1: its approval quorum is 1 in the store but 2 in the" \
           " ledger" in text.stderr
    report = cli.run("ledger", "verify", "--format", "json")
    assert report.exit_code == 1
    data = json.loads(report.stdout)
    assert (data["ok"], data["chain_ok"]) == (False, True)
    assert data["state"] == [{"action_id": 1, "problem": "its approval quorum is 1 in the"
                                                        " store but 2 in the ledger"}]


def test_verify_json_when_all_is_well(cli):
    cli.submit()
    result = cli.run("ledger", "verify", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["ok"], data["entries"], data["state"], data["checkpoints"]) == (True, 2, [], 0)


@pytest.mark.parametrize("args", [("--checkpoint", "x.ndjson"), ("--public-key", "k.pub")])
def test_checkpoint_and_public_key_go_together(cli, args):
    result = cli.run("ledger", "verify", *args)
    assert result.exit_code == 2
    assert "needs" in result.stderr


def test_a_checkpoint_file_that_is_not_one_is_located(cli):
    key, pub = cli.keygen()
    cli.submit()
    bad = cli.tmp / "bad.ndjson"
    bad.write_text('{"format": "airgate-checkpoint/1", "seq": 1, "seq": 2}\n')
    result = cli.run("ledger", "verify", "--checkpoint", str(bad), "--public-key", pub)
    assert result.exit_code == 1
    assert f"{bad}:1:1: not a checkpoint (invalid JSON: duplicate key 'seq')" in result.stderr


def test_export_ndjson_and_since(cli):
    cli.submit("d1")
    cli.submit("d2", AIRGATE_NOW="2024-05-01T13:00:00Z")
    lines = cli.run("ledger", "export", "--format", "ndjson").stdout.splitlines()
    assert [json.loads(x)["seq"] for x in lines] == [1, 2, 3]  # 1: the demo store's init
    later = cli.run("ledger", "export", "--format", "ndjson", "--since", "2024-05-01T12:30:00Z")
    assert [json.loads(x)["action_id"] for x in later.stdout.splitlines()] == [2]
    recent = cli.run("ledger", "export", "--since", "30m", AIRGATE_NOW="2024-05-01T13:10:00Z")
    assert [e["seq"] for e in json.loads(recent.stdout)] == [3]
