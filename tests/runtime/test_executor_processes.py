"""The command executor's processes: its whole process group dies with the run, and its
output is capped while it streams. Real programs, real pipes, real signals."""

from __future__ import annotations

import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from airgate.runtime.executors import CommandExecutor, ExecRequest
from airgate.runtime.executors.command import MAX_OUTPUT

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="reads process states from /proc")

# Forks a background job that writes $1 five seconds later (well past the 2 s time-out,
# even on a loaded machine), notes the job's pid in $2,
# then either exits at once (`exit`) or outlives any time-out (`sleep`).
FORKS = """\
#!/bin/sh
( sleep 5; echo late > "$1" ) &
echo $! > "$2"
{tail}
"""


def request(name: str = "ws1") -> ExecRequest:
    return ExecRequest("apply", {"id": 1, "action_type": "isolate_device"},
                       {"type": "device", "key": "d1", "name": name}, "airgate:1:apply:2")


def forking(tmp_path: Path, tail: str) -> tuple[tuple[str, ...], Path, Path]:
    script = tmp_path / "forks.sh"
    script.write_text(FORKS.format(tail=tail))
    late, pidfile = tmp_path / "late", tmp_path / "job.pid"
    return ("/bin/sh", str(script), str(late), str(pidfile)), late, pidfile


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie acts no more


def wait_until_gone(pidfile: Path) -> None:
    """Until the background job has ended: killed at once, or when it wrote its file."""
    assert pidfile.exists(), "the script did not get to fork its background job"
    pid = int(pidfile.read_text())
    limit = time.monotonic() + 20
    while alive(pid) and time.monotonic() < limit:
        time.sleep(0.05)


@pytest.mark.slow
def test_a_time_out_kills_the_background_job_too(tmp_path):
    argv, late, pidfile = forking(tmp_path, "sleep 30")
    result = CommandExecutor(argv, 2).run(request())
    assert (result.ok, result.message) == (False, "timed out after 2 s")
    wait_until_gone(pidfile)
    assert not late.exists()


@pytest.mark.slow
def test_what_a_program_leaves_behind_when_it_exits_is_killed(tmp_path):
    argv, late, pidfile = forking(tmp_path, "exit 0")
    result = CommandExecutor(argv, 20).run(request())
    assert result.ok, result.message
    wait_until_gone(pidfile)
    assert not late.exists()


class Interrupted(Exception):
    """Stands for Ctrl-C (or any error) reaching airgate while the program runs."""


def interrupt(signum, frame):  # type: ignore[no-untyped-def]
    raise Interrupted("interrupted while the executor ran")


@pytest.mark.slow
def test_an_interrupted_run_kills_the_program_and_its_background_job(tmp_path):
    argv, late, pidfile = forking(tmp_path, "sleep 30")
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(Interrupted, match="interrupted while the executor ran"):
            CommandExecutor(argv, 20).run(request())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    wait_until_gone(pidfile)
    assert not late.exists()


def python(tmp_path: Path, body: str) -> tuple[str, ...]:
    path = tmp_path / "prog.py"
    path.write_text(textwrap.dedent(body))
    return (sys.executable, str(path))


def test_output_beyond_the_cap_is_discarded_and_the_result_says_so(tmp_path):
    chunks, size = 64, 64 * 1024  # 4 MiB on each pipe, written in turns
    argv = python(tmp_path, f"""
        import sys
        for _ in range({chunks}):
            sys.stdout.buffer.write(b"o" * {size}); sys.stdout.flush()
            sys.stderr.buffer.write(b"e" * {size}); sys.stderr.flush()
    """)
    result = CommandExecutor(argv, 60).run(request())
    assert result.ok, result.message
    assert result.output == {"stdout": "o" * MAX_OUTPUT, "truncated": True,
                             "stdout_bytes": chunks * size}
    assert result.message == ("e" * MAX_OUTPUT + f" (stderr truncated: {chunks * size} bytes,"
                              f" the first {MAX_OUTPUT} kept)")


def test_truncated_stdout_of_a_failure_is_named_in_its_message(tmp_path):
    argv = python(tmp_path, f"""
        import sys
        sys.stdout.write("x" * {3 * MAX_OUTPUT}); sys.exit(4)
    """)
    result = CommandExecutor(argv, 60).run(request())
    assert not result.ok
    assert result.message == (f"exit status 4: {'x' * MAX_OUTPUT} (stdout truncated:"
                              f" {3 * MAX_OUTPUT} bytes, the first {MAX_OUTPUT} kept)")


def test_a_full_stderr_before_reading_stdin_does_not_deadlock(tmp_path):
    argv = python(tmp_path, """
        import json, sys
        sys.stderr.write("w" * (1024 * 1024)); sys.stderr.flush()
        data = sys.stdin.buffer.read()
        print(json.dumps({"read": len(data)}))
    """)
    big = request(name="n" * (1024 * 1024))
    result = CommandExecutor(argv, 60).run(big)
    assert result.ok, result.message
    assert result.output == {"read": len(big.as_json().encode("utf-8"))}


def test_a_program_that_never_reads_its_request_still_succeeds(tmp_path):
    argv = python(tmp_path, "print('{\"done\": true}')")
    result = CommandExecutor(argv, 60).run(request(name="n" * (1024 * 1024)))
    assert (result.ok, result.output) == (True, {"done": True})


def test_the_program_gets_a_session_of_its_own(tmp_path):
    argv = python(tmp_path, """
        import json, os
        print(json.dumps({"pid": os.getpid(), "pgid": os.getpgid(0), "sid": os.getsid(0)}))
    """)
    result = CommandExecutor(argv, 60).run(request())
    assert result.output["pgid"] == result.output["sid"] == result.output["pid"]
