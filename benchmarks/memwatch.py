"""Run a command; print its exit code, wall time and peak memory as one JSON line.

    python memwatch.py ERRFILE COMMAND...

Peak memory is taken two ways: the largest resident set of any one process
(``ru_maxrss`` of the waited-for children), and the largest sum of resident sets
of the command and every process under it, sampled every 20 ms. The sum counts
pages that forked workers still share with their parent once per process: an
upper bound. A separate launcher process keeps the benchmark's own (large)
pages out of the figures.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def _tree_rss_kib(pid: int) -> int:
    total = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        proc = Path("/proc") / str(current)
        try:
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
            for task in (proc / "task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue  # the process ended while being read
    return total


def main() -> None:
    errors, command = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    tree_peak = 0
    with open(errors, "wb") as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        while proc.poll() is None:
            tree_peak = max(tree_peak, _tree_rss_kib(proc.pid))
            time.sleep(0.02)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"rc": proc.returncode, "elapsed": elapsed, "peak_kib": peak,
                      "tree_peak_kib": max(tree_peak, peak)}))


if __name__ == "__main__":
    main()
