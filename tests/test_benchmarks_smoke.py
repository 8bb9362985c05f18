"""The benchmark code paths run at tiny sizes and produce figures (never asserts a time)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


@pytest.mark.slow
def test_benchmarks_produce_figures(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("airgate_bench_run", RUN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    # 1/20,000 of each size: a few dozen items, a 50-action store.
    report = module.main(["--scale", "20000", "--only", "throughput,streaming,queue,web",
                          "--postgres", "postgresql+psycopg://nobody@127.0.0.1:1/none"])
    names = {(f.bench, f.name) for f in report.figures}
    assert ("throughput", "airgate indexed engine") in names
    assert ("throughput", "dict / airgate") in names
    assert ("streaming", "peak memory of airgate evaluate (all processes)") in names
    assert any(bench == "queue-sqlite" for bench, _ in names)
    assert ("web", "Pending tab, first page (50 rows), p95") in names
    assert all(f.value > 0 for f in report.figures)
    assert "target(s) missed" in capsys.readouterr().out
