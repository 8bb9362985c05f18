"""``import airgate`` stays cheap: no command line, no database layer."""

from __future__ import annotations

import subprocess
import sys


def test_import_airgate_loads_neither_click_nor_sqlalchemy() -> None:
    code = ("import sys, airgate; "
            "print(sorted(m for m in ('click', 'sqlalchemy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
