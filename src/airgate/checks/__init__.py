"""Stage 4, policy checks: what CI runs over a policy set before it ships.

- ``validate.py``: ``airgate validate``, the language's lint plus, under
  ``--strict``, the static analysis of ``analysis.py``; ``report.py`` renders
  its findings as text, JSON, GitHub annotations or SARIF;
- ``suites.py``: ``kind: PolicyTest`` suites, loaded and checked;
  ``runner.py`` runs them on one or both engines; ``results.py`` reports
  them as text, JSON or JUnit;
- ``diff.py``: the decisions a policy change would add, remove or change.

May use: the engine, evidence and policy stages. Never the runtime or click.
"""
