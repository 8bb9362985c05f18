"""Roles in airgate.yaml: a misspelt role would grant nothing without a word, so every
role must be built in or declared under ``roles:``."""

from __future__ import annotations

from pathlib import Path

import pytest

from airgate.errors import InputError
from airgate.runtime.config import load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "airgate.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_misspelt_role_is_located_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "users:\n  alice: [active-remediation]\n"
                           "  dave: [search-and-purg]\n")
    with pytest.raises(InputError, match=r"airgate.yaml:3:10: unknown role 'search-and-purg'"
                                         r" for user 'dave' \(did you mean 'search-and-purge'\?\)"):
        load_config(path)


def test_a_role_far_from_any_names_the_built_in_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "users:\n  alice: [active-remediation, tier2]\n")
    with pytest.raises(InputError, match=r"airgate.yaml:2:31: unknown role 'tier2' for user"
                                         r" 'alice' \(built in: global-admin, .*; declare a"
                                         r" custom role under roles:\)"):
        load_config(path)


def test_a_declared_custom_role_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "roles: [tier2]\nusers:\n  alice: [active-remediation, tier2]\n")
    assert load_config(path).roles_of("alice") == ("active-remediation", "tier2")


def test_a_misspelt_custom_role_is_suggested_too(tmp_path: Path) -> None:
    path = write(tmp_path, "roles: [tier2-responder]\nusers:\n  alice: [tier2-responer]\n")
    with pytest.raises(InputError, match=r"did you mean 'tier2-responder'\?"):
        load_config(path)
