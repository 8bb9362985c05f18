"""The ``command`` executor: a configured program, the request as JSON on stdin, no shell.

The program runs in a session (and process group) of its own. Nothing of a run
outlives it: when the program exits, times out, or airgate leaves the run by
any other path (an interrupt, an error), the whole group is killed, so a
background job the program forked cannot go on acting after the outcome is
recorded. Of stdout and stderr at most ``MAX_OUTPUT`` bytes each are kept while
they stream; the rest is read and discarded, and the result says so.
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import shlex
import signal
import subprocess
import time
from typing import Any

from airgate.runtime.executors.base import ExecRequest, ExecResult
from airgate.runtime.executors.output import parse_strict_json, storable_text

MAX_OUTPUT = 64 * 1024  # bytes of stdout/stderr kept from a command
_READ = 64 * 1024
_POLL = 0.02  # seconds between checks whether the program has exited
_DRAIN = 1.0  # seconds to read what is left in the pipes once the group is killed


class _Capped:
    """The first ``MAX_OUTPUT`` bytes of a stream, and how many bytes it had in all."""

    def __init__(self) -> None:
        self.kept = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = MAX_OUTPUT - len(self.kept)
        if room > 0:
            self.kept += chunk[:room]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.kept)

    def text(self) -> str:
        # Bytes that are not UTF-8 are kept as \xNN escapes, not lost.
        return storable_text(bytes(self.kept).decode("utf-8", "backslashreplace"))


def _exited(pid: int) -> bool:
    """Whether the program has exited, without reaping it: while it is an unreaped
    zombie its pid (the group's id) cannot be reused, so killing the group stays safe."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(pid: int) -> None:
    # Nobody left in the group (or only what we may not signal): nothing to do.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _exchange(proc: subprocess.Popen[bytes], data: bytes, timeout: float,
              out: _Capped, err: _Capped) -> bool:
    """Feed ``data`` to stdin and read both pipes until the program exits and the pipes
    are drained, or the time-out; True if it timed out. One selector serves the three
    pipes, so a program filling one while we wait on another cannot deadlock."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    sinks: dict[int, _Capped] = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    deadline = time.monotonic() + timeout
    offset, exited, nap = 0, False, 0.0005
    with selectors.DefaultSelector() as sel:
        for stream in (proc.stdout, proc.stderr):
            sel.register(stream, selectors.EVENT_READ)
        if data:
            sel.register(proc.stdin, selectors.EVENT_WRITE)
        else:
            proc.stdin.close()
        while True:
            now = time.monotonic()
            if not exited and _exited(proc.pid):
                exited = True
                _kill_group(proc.pid)  # what it left behind must not act on
                deadline = now + _DRAIN  # the time-out no longer applies: it is done
            if exited and not sel.get_map():
                return False
            if now >= deadline:
                return not exited
            wait = min(deadline - now, _POLL)
            if not sel.get_map():
                # Both pipes closed: it is most likely exiting, so look again soon.
                nap = min(wait, nap * 2)
                time.sleep(nap)
                continue
            for key, _ in sel.select(wait):
                if key.fileobj is proc.stdin:
                    try:
                        # PIPE_BUF bytes never block once the pipe reports room.
                        offset += os.write(key.fd, data[offset:offset + select.PIPE_BUF])
                    except BrokenPipeError:
                        offset = len(data)  # it stopped reading: its business
                    if offset >= len(data):
                        sel.unregister(proc.stdin)
                        proc.stdin.close()
                    continue
                chunk = os.read(key.fd, _READ)
                if chunk:
                    sinks[key.fd].add(chunk)
                else:
                    sel.unregister(key.fileobj)


def _truncation(name: str, stream: _Capped) -> str:
    return f"{name} truncated: {stream.total} bytes, the first {len(stream.kept)} kept"


class CommandExecutor:
    """Runs a configured program: argv from the config only, the request as JSON on stdin."""

    name = "command"

    def __init__(self, argv: tuple[str, ...], timeout: float) -> None:
        if not argv:
            raise ValueError("a command executor needs an argv")
        self.argv = list(argv)
        self.timeout = timeout

    def plan(self, request: ExecRequest) -> str:
        """What a run would do, in one line (it starts nothing)."""
        return (f"command: would run {shlex.join(self.argv)} (no shell) with the request as"
                f" JSON on stdin, key {request.idempotency_key}, time-out {self.timeout:g} s")

    def run(self, request: ExecRequest) -> ExecResult:
        data = request.as_json().encode("utf-8")
        try:
            proc = subprocess.Popen(  # no shell: argv comes from the config, evidence from stdin
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, shell=False, start_new_session=True,
            )
        except OSError as exc:
            return ExecResult(False, None, f"cannot run {self.argv[0]}: {exc.strerror}", self.name)
        out, err = _Capped(), _Capped()
        with proc:
            try:
                timed_out = _exchange(proc, data, self.timeout, out, err)
            finally:
                _kill_group(proc.pid)  # on every path: time-out, interrupt, error, exit
                proc.wait()
        if timed_out:
            return ExecResult(False, None, f"timed out after {self.timeout:g} s", self.name)
        return self._result(proc.returncode, out, err)

    def _result(self, returncode: int, out: _Capped, err: _Capped) -> ExecResult:
        stdout, stderr = out.text(), err.text().strip()
        if err.truncated:
            stderr += f" ({_truncation('stderr', err)})"
        if returncode != 0:
            message = stderr or stdout.strip() or "no message"
            if out.truncated and not stderr:
                message += f" ({_truncation('stdout', out)})"
            return ExecResult(False, None, f"exit status {returncode}: {message}", self.name)
        output: Any = None
        if out.truncated:
            output = {"stdout": stdout, "truncated": True, "stdout_bytes": out.total}
        elif stdout.strip():
            try:
                output = parse_strict_json(stdout)
            except ValueError:
                # Exit 0 is what says "done"; text, or JSON that could not be stored and
                # hashed as it is (NaN, 1e400, a lone surrogate), is kept as text.
                output = {"stdout": stdout}
        return ExecResult(True, output, stderr, self.name)
