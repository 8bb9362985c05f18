"""Fixtures every stage's tests share: stores closed after each test, and a PostgreSQL
database of the session's own, dropped when the session ends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import runtime_helpers


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    # Python 3.13 warns about every SQLite connection left to the garbage collector, and
    # the warnings are errors here: each test's stores are closed when it ends.
    yield
    runtime_helpers.close_stores()


@pytest.fixture
def postgres_url() -> str:
    """A clean airgate store on PostgreSQL (skips without AIRGATE_TEST_POSTGRES_URL)."""
    return runtime_helpers.clean_postgres_url()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    runtime_helpers.drop_session_database()
