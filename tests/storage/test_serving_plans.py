"""Statements that run again and again while Candor serves search an index, on SQLite's plan: none reads a table
that grows with every certificate or order (the rate limits' counts have their own test in test_acme_limits.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, event

from candor.revocation.ocsp.index import ResponseIndex, load_from_database
from candor.storage import Database
from candor.storage.acme_views import refresh_orders

GROWING = ("ocsp_responses", "order_authorizations", "orders", "authorizations", "serials", "certificates", "issuances")


TRACED: list[str] = []  # every statement the fixture's database runs, as SQLite runs it (literals included)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/plans.db")
    for engine in {database.engine, database._read_engine}:  # before any connection is made
        event.listen(engine, "connect", lambda dbapi, _record: dbapi.set_trace_callback(TRACED.append))
    database.upgrade()
    try:
        yield database
    finally:
        database.dispose()


@contextmanager
def _traced() -> Iterator[list[str]]:
    """The statements run inside the block."""
    start = len(TRACED)
    found: list[str] = []
    try:
        yield found
    finally:
        found.extend(TRACED[start:])


def _table_scans(connection: Connection, statements: list[str], table: str) -> list[str]:
    """The plan steps that read a growing table whole, over the statements that name *table*."""
    named = [sql for sql in statements if re.match(r"\s*(SELECT|UPDATE|DELETE)", sql, re.I) and table in sql]
    assert named, f"no statement on {table} ran: {statements}"
    driver = connection.connection.driver_connection
    assert driver is not None
    plans = [(sql, row[3]) for sql in named for row in driver.execute(f"EXPLAIN QUERY PLAN {sql}")]
    return [f"{step}: {sql}" for sql, step in plans if step.split()[:2] in (["SCAN", t] for t in GROWING)]


def test_a_worker_following_the_signer_reads_only_the_new_responses(sqlite_db: Database) -> None:
    with _traced() as statements:
        load_from_database(sqlite_db, ResponseIndex(), since=datetime(2026, 11, 27, tzinfo=UTC))
    with sqlite_db.reader() as connection:
        assert _table_scans(connection, statements, "ocsp_responses") == []


def test_refreshing_the_orders_of_an_authorization_finds_them_by_it(sqlite_db: Database) -> None:
    with _traced() as statements, sqlite_db.connection() as connection:
        refresh_orders(connection, 1)
    with sqlite_db.reader() as connection:
        assert _table_scans(connection, statements, "order_authorizations") == []


def test_the_start_up_reconcile_reads_only_unfinished_work(sqlite_db: Database) -> None:
    from candor.storage import orders

    with _traced() as statements, sqlite_db.session() as session:
        orders.unfinished_issuances(session)
        orders.release_stale_orders(session, older_than=datetime(2026, 11, 27, tzinfo=UTC))
    with sqlite_db.reader() as connection:
        assert _table_scans(connection, statements, "issuances") == []
        assert _table_scans(connection, statements, "FROM orders") == []
