"""`airgate evaluate --format ndjson` on several processes: the same bytes as on one.

Chunks are made tiny here (``CHUNK_BYTES``) so that small inputs are cut in many
places, right where an investigation continues on the next line, after lines
without items, around errors and between files.
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from airgate.engine import streaming
from airgate.engine.core import compile as compile_engine
from airgate.errors import EvidenceError
from airgate.evidence.reader import Parsed, iter_evidence, iter_units, parse_line
from airgate.policy.loader import load_policy_text
from helpers import cli, policy_doc

pytestmark = pytest.mark.skipif(not streaming.fork_available(),
                                reason="parallel evaluation forks (Linux only)")

POLICY = policy_doc("""\
    - id: quarantine
      match: {verdict: [malicious, suspicious], entity: file}
      action: quarantine_file
      approval: auto
    - id: quarantine-big
      match:
        verdict: malicious
        entity: file
        where: {field: fileDetails.fileSize, gt: 1000}
      action: quarantine_file
      approval: {roles: [soc-lead], quorum: 2}
    - id: isolate
      match: {verdict: malicious, entity: device}
      action: isolate_device
    - id: lab
      effect: exclude
      reason: lab machines
      match:
        entity: device
        where: {field: deviceDnsName, glob: "lab*"}
""", name="stream")


def _file(rng: random.Random) -> dict[str, Any]:
    n = rng.randrange(6)  # few hashes: items of one investigation merge
    return {"type": "file", "verdict": rng.choice(["malicious", "suspicious", "unknown"]),
            "fields": {"fileDetails": {"sha256": f"{n:064x}", "fileName": f"f{n}.exe",
                                       "fileSize": rng.choice([10, 5000]),
                                       "filePath": "C:\\Users\\x"},
                       "mdeDeviceId": f"d{rng.randrange(3)}"}}


def _device(rng: random.Random) -> dict[str, Any]:
    n = rng.randrange(4)
    return {"type": "device", "verdict": rng.choice(["malicious", "suspicious"]),
            "fields": {"mdeDeviceId": f"d{n}", "deviceDnsName": rng.choice(["lab1", "pc1"])}}


def _alert(rng: random.Random, ident: str) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.security.alert", "id": ident, "evidence": [
        {"@odata.type": "#microsoft.graph.security.deviceEvidence", "verdict": "malicious",
         "mdeDeviceId": f"a{rng.randrange(3)}", "deviceDnsName": "pc9"},
        {"@odata.type": "#microsoft.graph.security.futureThingEvidence", "verdict": "malicious",
         "thing": "x"},  # unknown type: a warning
    ]}


def ndjson_lines(seed: int, count: int) -> Iterator[str]:
    """Investigations that often go on over several lines, lines without items, Graph
    alerts with warnings, blank lines."""
    rng = random.Random(seed)
    inv = 0
    for _ in range(count):
        if rng.random() < 0.6:
            inv += 1  # otherwise the same investigation goes on
        shape = rng.random()
        if shape < 0.1:
            yield ""
        elif shape < 0.2:
            yield json.dumps({"apiVersion": "airgate/v1", "kind": "Investigation",
                              "id": f"inv-{inv}", "evidence": []})
        elif shape < 0.3:
            yield json.dumps(_alert(rng, f"inv-{inv}"))
        else:
            items = [rng.choice([_file, _device])(rng) for _ in range(rng.randrange(1, 5))]
            yield json.dumps({"apiVersion": "airgate/v1", "kind": "Investigation",
                              "id": f"inv-{inv}", "evidence": items})


@pytest.fixture()
def policy(tmp_path: Path) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return str(path)


def _record_chunks(monkeypatch: pytest.MonkeyPatch, size: int,
                   record: Callable[[Any], object]) -> None:
    """Chunks of about ``size`` bytes, each passed to ``record`` as it is cut."""
    monkeypatch.setattr(streaming, "CHUNK_BYTES", size)
    chunks = streaming._chunks

    def spy(units: Any, target: int) -> Iterator[Any]:
        for chunk in chunks(units, target):
            record(chunk)
            yield chunk

    monkeypatch.setattr(streaming, "_chunks", spy)


@pytest.fixture()
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Chunks of about 300 bytes; the list fills with the size of each chunk cut."""
    cut: list[int] = []
    _record_chunks(monkeypatch, 300, lambda chunk: cut.append(len(chunk.units)))
    return cut


@pytest.fixture()
def chunk_log(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Chunks of about 2,000 bytes; the list fills with each chunk cut."""
    log: list[Any] = []
    _record_chunks(monkeypatch, 2000, log.append)
    return log


def evaluate(policy: str, *args: str, jobs: int) -> Result:
    return cli("evaluate", *args, "--policy", policy, "--format", "ndjson", "--jobs", str(jobs))


def assert_same(policy: str, *args: str, cut: list[int]) -> Result:
    one = evaluate(policy, *args, jobs=1)
    assert not cut, "one job must not chunk"
    two = evaluate(policy, *args, jobs=2)
    assert len(cut) > 3, "the input must have been cut into chunks for workers"
    assert (two.exit_code, two.stdout, two.stderr) == (one.exit_code, one.stdout, one.stderr)
    return two


def test_parallel_output_is_byte_identical(tmp_path: Path, policy: str,
                                           tiny_chunks: list[int]) -> None:
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(ndjson_lines(7, 400)) + "\n")
    result = assert_same(policy, str(path), cut=tiny_chunks)
    assert result.exit_code == 0
    decisions = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(decisions) > 100
    # An investigation that went on over several lines still has one decision per
    # (entity, action), whatever chunk its lines landed in.
    keys = [(d["investigation"], d["entity"]["key"], d["action"]) for d in decisions]
    assert len(keys) == len(set(keys))
    assert "unknown-evidence-type" in result.stderr


def test_investigation_split_over_lines_is_never_cut(tmp_path: Path, policy: str,
                                                     tiny_chunks: list[int]) -> None:
    # Every line is past the chunk size, and all belong to one investigation: no cut.
    lines = [json.dumps({"apiVersion": "airgate/v1", "kind": "Investigation", "id": "big",
                         "evidence": [_file(random.Random(i))]}) for i in range(40)]
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join([*lines, *ndjson_lines(3, 60)]) + "\n")
    result = assert_same(policy, str(path), cut=tiny_chunks)
    assert tiny_chunks[0] >= 40
    big = [json.loads(line) for line in result.stdout.splitlines() if '"big"' in line]
    assert len({d["entity"]["key"] for d in big}) == len(big)


@pytest.mark.parametrize("bad_line, message", [
    ("{not json", "invalid JSON"),
    ('{"apiVersion": "airgate/v1", "kind": "Investigation", "id": "x", "evidence": 5}',
     "evidence"),
    ('{"id": "a", "id": "b"}', "duplicate key"),
])
def test_error_mid_stream_matches_one_process(tmp_path: Path, policy: str,
                                              tiny_chunks: list[int], bad_line: str,
                                              message: str) -> None:
    lines = list(ndjson_lines(11, 200))
    lines.insert(150, bad_line)
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(lines) + "\n")
    result = assert_same(policy, str(path), cut=tiny_chunks)
    assert result.exit_code == 1
    assert message in result.stderr
    assert f"in.ndjson:{151}" in result.stderr
    assert result.stdout  # what came before the error was written


@pytest.mark.parametrize("at", range(60, 76))
def test_error_found_by_a_worker_or_while_cutting(tmp_path: Path, policy: str,
                                                  chunk_log: list[Any], at: int) -> None:
    # Mid-chunk, only a worker meets the bad line, while this process reads on.
    lines = [line for line in ndjson_lines(13, 200) if line]
    lines.insert(at, "{broken")
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(lines) + "\n")
    one = evaluate(policy, str(path), jobs=1)
    two = evaluate(policy, str(path), jobs=2)
    assert (two.exit_code, two.stdout, two.stderr) == (one.exit_code, one.stdout, one.stderr)
    assert one.exit_code == 1 and f"in.ndjson:{at + 1}:2" in one.stderr
    holding = next(i for i, c in enumerate(chunk_log)
                   if any(isinstance(u, tuple) and u[2].startswith(b"{broken") for u in c.units))
    FOUND_BY.add("worker" if holding < len(chunk_log) - 1 else "cutting")


FOUND_BY: set[str] = set()


def test_both_ways_of_meeting_an_error_were_exercised() -> None:
    # Runs after the cases above (file order): some bad lines must have been met by a
    # worker with later chunks already read, some while looking for a cut.
    if len(FOUND_BY) == 0:
        pytest.skip("run with the cases above")
    assert {"worker", "cutting"} == FOUND_BY


def test_warnings_keep_input_order_across_documents(tmp_path: Path, policy: str,
                                                    tiny_chunks: list[int]) -> None:
    # One investigation over all three: they share a chunk, where a whole document's
    # warnings must still come after those of the lines before it.
    first = tmp_path / "a.ndjson"
    first.write_text(json.dumps(_alert(random.Random(1), "alert-a")) + "\n"
                     + json.dumps(_alert(random.Random(2), "alert-a")) + "\n")
    doc = tmp_path / "b.json"
    doc.write_text(json.dumps(_alert(random.Random(3), "alert-a")))
    last = tmp_path / "c.ndjson"
    last.write_text("\n".join(ndjson_lines(5, 60)) + "\n")
    result = assert_same(policy, str(first), str(doc), str(last), cut=tiny_chunks)
    warned = [line.split(":")[2].strip() for line in result.stderr.splitlines()]
    assert warned[:3] == [str(first), str(first), str(doc)]


def test_an_investigation_past_the_chunk_limit_goes_on_in_this_process(
        tmp_path: Path, policy: str, tiny_chunks: list[int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "MAX_CHUNK_BYTES", 3000)
    big = [json.dumps({"apiVersion": "airgate/v1", "kind": "Investigation", "id": "big",
                       "evidence": [_file(random.Random(i))]}) for i in range(60)]
    lines = [*ndjson_lines(3, 40), *big, *ndjson_lines(4, 40)]
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(lines) + "\n")
    assert_same(policy, str(path), cut=tiny_chunks)
    # The chunk holding "big" stopped growing at the limit (the rest was read here).
    assert max(tiny_chunks) < 60


def test_line_too_long_mid_stream(tmp_path: Path, policy: str, tiny_chunks: list[int],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import airgate.evidence.reader as ev

    monkeypatch.setattr(ev, "MAX_LINE_BYTES", 2000)
    lines = [line for line in ndjson_lines(5, 120) if len(line) < 1500]
    lines.insert(90, json.dumps({"id": "x" * 3000}))
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(lines) + "\n")
    result = assert_same(policy, str(path), cut=tiny_chunks)
    assert result.exit_code == 1
    assert "longer than the limit" in result.stderr


def test_several_sources_and_formats(tmp_path: Path, policy: str,
                                     tiny_chunks: list[int]) -> None:
    first = tmp_path / "a.ndjson"
    first.write_text("\n".join(ndjson_lines(1, 80)) + "\n")
    yaml_doc = tmp_path / "b.yaml"
    yaml_doc.write_text("apiVersion: airgate/v1\nkind: Investigation\nid: inv-80\nevidence:\n"
                        "  - {type: device, verdict: malicious, fields: {mdeDeviceId: z}}\n")
    alert = tmp_path / "c.json"
    alert.write_text(json.dumps(_alert(random.Random(0), "alert-1")))
    last = tmp_path / "d.jsonl"
    last.write_text("\n".join(ndjson_lines(2, 80)) + "\n")
    result = assert_same(policy, str(first), str(yaml_doc), str(alert), str(last),
                         cut=tiny_chunks)
    assert result.exit_code == 0
    assert '"z"' in result.stdout and "alert-1" in result.stdout


def test_missing_second_source(tmp_path: Path, policy: str, tiny_chunks: list[int]) -> None:
    first = tmp_path / "a.ndjson"
    first.write_text("\n".join(ndjson_lines(1, 80)) + "\n")
    result = assert_same(policy, str(first), str(tmp_path / "nope.ndjson"), cut=tiny_chunks)
    assert result.exit_code == 1
    assert "nope.ndjson: no such file" in result.stderr


def test_explain(tmp_path: Path, policy: str, tiny_chunks: list[int]) -> None:
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(ndjson_lines(4, 100)) + "\n")
    result = assert_same(policy, str(path), "--explain", cut=tiny_chunks)
    assert '"no_decision"' in result.stdout and '"explanation"' in result.stdout


def test_standard_input(policy: str, tiny_chunks: list[int]) -> None:
    text = "\n".join(ndjson_lines(9, 150)) + "\n"
    runner_args = ["evaluate", "-", "--policy", policy, "--format", "ndjson"]
    from click.testing import CliRunner

    from airgate.cli import main

    one = CliRunner().invoke(main, [*runner_args, "-j", "1"], input=text)
    two = CliRunner().invoke(main, [*runner_args, "-j", "2"], input=text)
    assert len(tiny_chunks) > 3
    assert (two.exit_code, two.stdout) == (one.exit_code, one.stdout)
    assert one.exit_code == 0 and one.stdout


def test_small_input_stays_in_process(tmp_path: Path, policy: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pool(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("no worker process for an input of one chunk")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", no_pool)
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(ndjson_lines(4, 20)) + "\n")
    assert evaluate(policy, str(path), jobs=4).stdout == evaluate(policy, str(path),
                                                                   jobs=1).stdout


def test_dead_worker_is_an_error_not_a_hang(tmp_path: Path, policy: str,
                                            tiny_chunks: list[int],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    parent = os.getpid()

    def die(*args: Any) -> Any:
        if os.getpid() != parent:
            os._exit(9)
        raise AssertionError("chunks of a large input run in workers")

    monkeypatch.setattr(streaming, "_run", die)
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(ndjson_lines(4, 100)) + "\n")
    result = evaluate(policy, str(path), jobs=2)
    assert result.exit_code == 1
    assert "worker process" in result.stderr and "--jobs 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_library_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 500)
    policy_set = load_policy_text(POLICY)
    engine = compile_engine(policy_set)
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(ndjson_lines(8, 200)) + "\n")
    outputs = []
    for jobs in (1, 3):
        out: list[str] = []
        seen: list[int] = []
        streaming.write_ndjson(engine, [path], out.append, catalog=policy_set.catalog,
                               jobs=jobs, on_items=seen.append)
        outputs.append("".join(out))
        assert sum(seen) == len(list(iter_evidence(path)))
    assert outputs[0] == outputs[1]


def test_units_parse_to_the_same_items(tmp_path: Path) -> None:
    path = tmp_path / "in.ndjson"
    path.write_text("\n\n".join(ndjson_lines(6, 50)) + "\n")
    items = []
    for unit in iter_units(path):
        items.extend(unit.items if isinstance(unit, Parsed) else parse_line(unit))
    assert items == list(iter_evidence(path))
    doc = io.BytesIO(b"apiVersion: airgate/v1\nkind: Investigation\nid: i\nevidence:\n"
                     b"  - {type: device, verdict: malicious, fields: {mdeDeviceId: z}}\n"
                     b"---\n- broken\n")
    doc.name = "two.yaml"
    units = iter_units(doc)
    first = next(units)
    assert isinstance(first, Parsed) and len(first.items) == 1  # before the failure
    with pytest.raises(EvidenceError):
        next(units)


def test_progress_counter_on_a_terminal(tmp_path: Path, policy: str) -> None:
    import pty

    path = tmp_path / "in.ndjson"
    lines = [line for line in ndjson_lines(12, 14000) if "@odata" not in line]  # no warnings
    path.write_text("\n".join(lines) + "\n")
    total = len(list(iter_evidence(path)))
    assert total > 20_000
    for jobs in ("1", "2"):
        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "airgate", "evaluate", str(path), "--policy", policy,
             "--format", "ndjson", "--jobs", jobs],
            stdout=subprocess.DEVNULL, stderr=follower)
        os.close(follower)
        seen = b""
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # the other end closed
                break
            if not data:
                break
            seen += data
        os.close(leader)
        assert proc.wait() == 0
        counts = [int(n) for n in re.findall(r"\r(\d+) evidence items evaluated", seen.decode())]
        assert len(counts) >= 3, seen  # on the way, and the total at the end
        assert counts == sorted(counts) and counts[0] >= 10_000
        assert counts[-1] == total and seen.endswith(b"\n")


def test_standard_input_stays_in_one_process_by_default(policy: str,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        tiny_chunks: list[int]) -> None:
    # A live feed on stdin must not wait for chunks to fill; --jobs asks for workers.
    from click.testing import CliRunner

    from airgate.cli import main

    text = "\n".join(ndjson_lines(9, 150)) + "\n"
    result = CliRunner().invoke(main, ["evaluate", "-", "--policy", policy, "--format",
                                       "ndjson"], input=text)
    assert result.exit_code == 0 and result.stdout
    assert tiny_chunks == []


def test_files_go_to_workers_by_default(tmp_path: Path, policy: str,
                                        tiny_chunks: list[int]) -> None:
    if streaming.default_jobs() < 2:
        pytest.skip("one CPU: one process")
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(ndjson_lines(9, 150)) + "\n")
    result = cli("evaluate", str(path), "--policy", policy, "--format", "ndjson")
    assert result.exit_code == 0 and result.stdout == evaluate(policy, str(path), jobs=1).stdout
    assert len(tiny_chunks) > 3


def test_a_live_feed_on_stdin_gets_decisions_before_it_ends(policy: str) -> None:
    import select

    def line(inv: str) -> bytes:
        return (json.dumps({"apiVersion": "airgate/v1", "kind": "Investigation", "id": inv,
                            "evidence": [_device(random.Random(1))]}) + "\n").encode()

    # Python's own stdout buffering, as on a machine without PYTHONUNBUFFERED.
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    with subprocess.Popen(
            [sys.executable, "-m", "airgate", "evaluate", "-", "--policy", policy, "--format",
             "ndjson"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=buffered) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            # inv-1 is complete once inv-2 starts; the feed stays open.
            proc.stdin.write(line("inv-1") + line("inv-2"))
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            assert ready, "no decision while the feed was open"
            assert b'"inv-1"' in proc.stdout.readline()
        finally:
            proc.stdin.close()
            rest = proc.stdout.read()
            proc.wait(timeout=60)
    assert b'"inv-2"' in rest and proc.returncode == 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(c) for c in (task / "children").read_text().split())
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status  # a zombie has ended


def test_workers_end_when_their_parent_is_killed(tmp_path: Path, policy: str) -> None:
    import signal
    import time

    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(ndjson_lines(21, 100_000)) + "\n")
    with subprocess.Popen(
            [sys.executable, "-m", "airgate", "evaluate", str(path), "--policy", policy,
             "--format", "ndjson", "--jobs", "2"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        deadline = time.monotonic() + 30
        workers: list[int] = []
        while len(workers) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            workers = _children(proc.pid)
        assert len(workers) >= 2, "the run ended before its workers were seen"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 20
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "orphaned workers kept running"


def test_units_keep_their_locations(tmp_path: Path) -> None:
    path = tmp_path / "in.ndjson"
    path.write_text("\n\n".join(ndjson_lines(6, 50)) + "\n")
    from_units = [ev.location for unit in iter_units(path)
                  for ev in (unit.items if isinstance(unit, Parsed) else parse_line(unit))]
    assert from_units == [ev.location for ev in iter_evidence(path)]
    assert len({loc.line for loc in from_units}) > 20
