"""Shared fixtures.

Database fixtures: ``db`` is an upgraded :class:`candor.storage.Database`, once on SQLite (a file in
``tmp_path``) and once on PostgreSQL (a fresh schema, dropped afterwards). PostgreSQL is taken from
``CANDOR_TEST_POSTGRES_URL``; if it does not answer, its tests are skipped, or fail when
``CANDOR_REQUIRE_ALL=1``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from candor.storage import Database

# --- databases ---------------------------------------------------------------------------------------

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server's URL, after checking that it answers."""
    url = os.environ.get("CANDOR_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach it means "not available here"
        reason = f"PostgreSQL at {make_url(url).render_as_string()} does not answer: {type(exc).__name__}"
        if os.environ.get("CANDOR_REQUIRE_ALL") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A URL whose connections work in a new, empty schema of their own (dropped afterwards)."""
    schema = f"candor_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, never-migrated database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'candor.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated database on each backend."""
    database = Database(database_url)
    database.upgrade()
    try:
        yield database
    finally:
        database.dispose()


# --- components that must not be silently missing in CI ------------------------------------------------

from softhsm import softhsm  # noqa: E402, F401  (the suite-wide SoftHSM2 token pool)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Under CANDOR_REQUIRE_ALL=1 (CI), a skipped test is a failed test: no component may be missing."""
    report = yield
    if os.environ.get("CANDOR_REQUIRE_ALL") == "1" and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped under CANDOR_REQUIRE_ALL=1: {report.longrepr}"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> object:
    """The same for a whole module skipped while it is collected (a module-level ``pytest.importorskip``), which
    never reaches :func:`pytest_runtest_makereport`."""
    report = yield
    if os.environ.get("CANDOR_REQUIRE_ALL") == "1" and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped under CANDOR_REQUIRE_ALL=1: {report.longrepr}"
    return report
