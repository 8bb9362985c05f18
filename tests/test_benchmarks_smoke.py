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


@pytest.mark.postgres
@pytest.mark.slow
def test_the_worker_benchmarks_produce_figures(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import os

    from runtime_helpers import ENV_POSTGRES, session_postgres_url

    session_postgres_url()  # skips (or, in CI, fails) without a server
    spec = importlib.util.spec_from_file_location("airgate_bench_run_worker", RUN)
    assert spec is not None and spec.loader is not None
    monkeypatch.setenv("AIRGATE_BENCH_DB", f"airgate_test_bench_{os.getpid()}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    report = module.main(["--scale", "200", "--only", "worker",
                          "--postgres", os.environ[ENV_POSTGRES]])
    names = {f.name for f in report.figures if f.bench == "worker"}
    assert "2 workers / 1 worker" in names
    assert any(name.startswith("approve -> executor start") for name in names)
    assert any(name.startswith("claim queries planned") for name in names)
    assert all(f.value > 0 for f in report.figures)
    assert "Index Cond" in capsys.readouterr().out  # the plans are printed


@pytest.mark.slow
def test_the_server_benchmark_runs_its_quick_path(capsys: pytest.CaptureFixture[str]) -> None:
    # A real `airgate serve` (one process, then --workers 2) on 127.0.0.1 and the in-process
    # baseline, at 100 alerts.
    path = RUN.with_name("server_submit.py")
    spec = importlib.util.spec_from_file_location("airgate_bench_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    figures = module.main(["--quick", "--alerts", "100", "--batch", "50"])
    assert set(figures) == {"queued_api", "queued_api_workers", "queued_in_process",
                            "queued_ratio"}
    assert all(v > 0 for v in figures.values())
    assert "API / in-process" in capsys.readouterr().out
