"""Fixtures every stage's tests share: stores closed after each test, and a PostgreSQL
database of the session's own, dropped when the session ends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import runtime_helpers


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    # Python 3.13 warns about every SQLite connection left to the garbage collector, and
    # the warnings are errors here: each test's stores are closed when it ends.
    yield
    runtime_helpers.close_stores()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty airgate store, once on SQLite (a tmp file) and once on PostgreSQL: a test
    that takes it runs on both backends. The PostgreSQL run is skipped, with the reason
    in the summary, when AIRGATE_TEST_POSTGRES_URL is unset (.ci/run always sets it)."""
    if request.param == "sqlite":
        return str(tmp_path / "airgate.db")
    return runtime_helpers.clean_postgres_store()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Like ``store_url``, but a database without airgate's tables (a test that builds an
    old schema by hand)."""
    if request.param == "sqlite":
        return str(tmp_path / "airgate.db")
    return runtime_helpers.clean_postgres_url()


@pytest.fixture
def postgres_url() -> str:
    """An empty PostgreSQL database, no airgate tables in it (skips without
    AIRGATE_TEST_POSTGRES_URL)."""
    return runtime_helpers.clean_postgres_url()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    runtime_helpers.drop_session_database()
    # CI expects a server (.ci/run sets this): a session that ran tests but not one of them
    # on PostgreSQL tested half of what it claims, and fails.
    required = os.environ.get(runtime_helpers.ENV_POSTGRES_REQUIRED)
    if required and session.testscollected and not runtime_helpers.POSTGRES_USED:
        if session.config.option.markexpr or session.config.option.keyword:
            return  # a selection (-m, -k) may leave PostgreSQL out on purpose
        session.config.get_terminal_writer().line(
            f"{runtime_helpers.ENV_POSTGRES_REQUIRED} is set but no PostgreSQL test ran",
            red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
