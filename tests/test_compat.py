"""Import paths of airgate 0.1 keep working after the move to one subpackage per stage."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import warnings

import pytest

from airgate.compat import MOVED_MODULES

# former module, a name it had, the module that holds that name now
FORMER = [
    ("airgate.yamlsrc", "iter_documents", "airgate.policy.yamlsrc"),
    ("airgate.jsonsrc", "positions", "airgate.policy.jsonsrc"),
    ("airgate.schemacheck", "schema_findings", "airgate.policy.schemacheck"),
    ("airgate.durations", "parse_duration", "airgate.policy.durations"),
    ("airgate.lint", "check_documents", "airgate.policy.lint"),
    ("airgate.lint", "validate_paths", "airgate.checks.validate"),
    ("airgate.analysis", "check", "airgate.checks.analysis"),
    ("airgate.report", "render_sarif", "airgate.checks.report"),
    ("airgate.testsuite", "load_suites", "airgate.checks.suites"),
    ("airgate.policytest", "run_suites", "airgate.checks.runner"),
    ("airgate.testreport", "render_junit", "airgate.checks.results"),
    ("airgate.diff", "policy_impact", "airgate.checks.diff"),
    ("airgate.evidence_docs", "kind_of", "airgate.evidence.documents"),
    ("airgate.evidence_native", "NativeChecker", "airgate.evidence.native"),
    ("airgate.graph", "identity_key", "airgate.evidence.graph"),
    ("airgate.conditions", "compile_node", "airgate.engine.conditions"),
    ("airgate.decide", "merge_approvals", "airgate.engine.decide"),
    pytest.param("airgate.durable_engine", "DurableMatcher", "airgate.engine.durable",
                 marks=pytest.mark.skipif(importlib.util.find_spec("durable") is None,
                                          reason="durable-rules is not installed")),
    ("airgate.explain", "explain_decision", "airgate.engine.explain"),
    ("airgate.decision_json", "decision_encoder", "airgate.engine.decision_json"),
    ("airgate.streaming", "write_ndjson", "airgate.engine.streaming"),
    ("airgate.records", "ActionFilter", "airgate.runtime.records"),
    ("airgate.clock", "FixedClock", "airgate.runtime.clock"),
    ("airgate.config", "load_config", "airgate.runtime.config"),
    ("airgate.ledger", "verify_rows", "airgate.runtime.ledger"),
    ("airgate.investigations", "derive", "airgate.runtime.investigations"),
    ("airgate.executor", "make_executor", "airgate.runtime.executors"),
    ("airgate.store", "Store", "airgate.runtime.store.database"),
    ("airgate.store_schema", "metadata", "airgate.runtime.store.schema"),
    ("airgate.store_tx", "Tx", "airgate.runtime.store.tx"),
    ("airgate.queue", "Queue", "airgate.runtime.queue"),
    ("airgate.queue", "check_transition", "airgate.runtime.records"),
    ("airgate.submit", "enqueue", "airgate.runtime.submit"),
    ("airgate.approvals", "approve", "airgate.runtime.approvals"),
    ("airgate.approvals", "check_actor", "airgate.runtime.guards"),
    ("airgate.undo", "redo", "airgate.runtime.undo"),
]


def _fresh_import(name: str) -> tuple[object, list[warnings.WarningMessage]]:
    sys.modules.pop(name, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(name)
    return module, caught


def _values(case: object) -> tuple[str, str, str]:
    values = case.values if isinstance(case, type(pytest.param(0))) else case
    return tuple(values)  # type: ignore[return-value,arg-type]


@pytest.mark.parametrize(("old", "name", "home"), FORMER,
                         ids=["{}.{}".format(*_values(c)[:2]) for c in FORMER])
def test_former_module_paths_still_import_with_a_warning_naming_the_new_path(
        old: str, name: str, home: str) -> None:
    module, caught = _fresh_import(old)
    assert getattr(module, name) is getattr(importlib.import_module(home), name)
    assert [w.category for w in caught] == [DeprecationWarning]
    assert f"{old} moved to {MOVED_MODULES[old][0]}" in str(caught[0].message)
    sys.modules.pop(old, None)


def test_every_former_module_is_covered_above() -> None:
    assert {_values(case)[0] for case in FORMER} == set(MOVED_MODULES)


def test_a_name_the_new_home_lacks_says_where_the_module_went() -> None:
    module, _ = _fresh_import("airgate.queue")
    with pytest.raises(AttributeError, match="'airgate.queue' moved to 'airgate.runtime.queue'"):
        module.no_such_name  # type: ignore[attr-defined]  # noqa: B018
    sys.modules.pop("airgate.queue", None)


def test_setting_a_name_through_a_former_path_reaches_the_code_that_reads_it() -> None:
    module, _ = _fresh_import("airgate.submit")
    import airgate.runtime.submit as submit

    before = submit.BATCH
    try:
        module.BATCH = 3  # type: ignore[attr-defined]
        assert submit.BATCH == 3
    finally:
        submit.BATCH = before
    sys.modules.pop("airgate.submit", None)


@pytest.mark.parametrize(("package", "names"), [
    ("airgate.policy", ["load_policy_set", "load_policy_text", "analyze_paths"]),
    ("airgate.evidence", ["load_evidence", "iter_evidence", "iter_units", "parse_line",
                          "Parsed", "MAX_DOCUMENT_BYTES"]),
    ("airgate.engine", ["compile", "Engine", "decision_to_dict", "CompiledPolicy"]),
])
def test_documented_module_names_work_from_the_package_without_a_warning(
        package: str, names: list[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module = importlib.import_module(package)
        for name in names:
            assert getattr(module, name) is not None
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'nope'"):
        module.nope  # noqa: B018


def test_old_paths_work_from_a_users_script() -> None:
    # What a user's code of 0.1 does, in a fresh interpreter: works, warns once per module.
    code = ("import warnings; warnings.simplefilter('default')\n"
            "from airgate.queue import Queue\n"
            "from airgate.store import Store\n"
            "from airgate.engine import decision_to_dict\n"
            "from airgate.policy import load_policy_set\n"
            "print(Queue.__module__, Store.__module__, decision_to_dict.__module__,"
            " load_policy_set.__module__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["airgate.runtime.queue", "airgate.runtime.store.database",
                                  "airgate.engine.decision_json", "airgate.policy.loader"]
    assert out.stderr.count("DeprecationWarning") == 2
    assert "airgate.queue moved to airgate.runtime.queue" in out.stderr
