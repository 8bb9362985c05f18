"""Helpers shared by the policy, engine, diff and policy-test tests: inline policy
documents, in-memory evidence, one evaluation, and a CLI call."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from airgate.cli import main
from airgate.engine.core import compile as compile_engine
from airgate.evidence.reader import load_evidence
from airgate.model import Decision
from airgate.policy.loader import load_policy_text

ROOT = Path(__file__).resolve().parent.parent  # the repository
DATA = ROOT / "tests" / "data"  # sample files shared by the stages' tests


def policy_doc(rules: str, name: str = "p") -> str:
    """A Policy document holding ``rules``: YAML rule items indented by four spaces."""
    return (f"apiVersion: airgate/v1\nkind: Policy\nmetadata: {{name: {name}}}\nspec:\n"
            f"  rules:\n{rules}")


def evidence_stream(text: str, name: str = "ev.yaml") -> io.StringIO:
    """Evidence text as a named file object (the name sets the format and the locations)."""
    stream = io.StringIO(text)
    stream.name = name
    return stream


def decide(policy: str, evidence: str, **compile_args: Any) -> list[Decision]:
    """The decisions of inline ``evidence`` under the inline ``policy``."""
    engine = compile_engine(load_policy_text(policy), **compile_args)
    return engine.evaluate(load_evidence([evidence_stream(evidence)]))


def cli(*args: str) -> Result:
    """Run ``airgate ARGS`` in-process; stdout and stderr stay apart."""
    return CliRunner().invoke(main, list(args))
