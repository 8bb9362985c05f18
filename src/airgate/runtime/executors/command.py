"""The ``command`` executor: a configured program, the request as JSON on stdin, no shell."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from airgate.runtime.executors.base import ExecRequest, ExecResult

MAX_OUTPUT = 64 * 1024  # bytes of stdout/stderr kept from a command


class CommandExecutor:
    """Runs a configured program: argv from the config only, the request as JSON on stdin."""

    name = "command"

    def __init__(self, argv: tuple[str, ...], timeout: float) -> None:
        if not argv:
            raise ValueError("a command executor needs an argv")
        self.argv = list(argv)
        self.timeout = timeout

    def run(self, request: ExecRequest) -> ExecResult:
        try:
            proc = subprocess.run(  # no shell: argv comes from the config, evidence from stdin
                self.argv, input=request.as_json().encode("utf-8"), capture_output=True,
                timeout=self.timeout, shell=False, check=False,
            )
        except subprocess.TimeoutExpired:
            return ExecResult(False, None, f"timed out after {self.timeout:g} s", self.name)
        except OSError as exc:
            return ExecResult(False, None, f"cannot run {self.argv[0]}: {exc.strerror}", self.name)
        stdout = proc.stdout[:MAX_OUTPUT].decode("utf-8", "replace")
        stderr = proc.stderr[:MAX_OUTPUT].decode("utf-8", "replace").strip()
        if proc.returncode != 0:
            message = stderr or stdout.strip() or "no message"
            return ExecResult(False, None, f"exit status {proc.returncode}: {message}", self.name)
        output: Any = None
        if stdout.strip():
            try:
                output = json.loads(stdout)
            except ValueError:
                # Exit 0 is what says "done"; a program that prints text is kept as text.
                output = {"stdout": stdout}
        return ExecResult(True, output, stderr, self.name)
