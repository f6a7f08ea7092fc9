"""candor.storage.fastsql.bind / run_bound: parameters processed before the transaction (e.g. before SQLite's write
lock) give what run gives, on both backends; a statement run cannot take on the cursor, or bound for another
dialect, still runs, through run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult

from candor.storage import Database, fastsql
from candor.storage.fastsql import Rows, bind, run_bound
from candor.storage.types import UTCDateTime

NOW = datetime(2026, 11, 27, 10, 0, 0, 654321, tzinfo=UTC)
metadata = MetaData()
items = Table(
    "fastsql_bound_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)
ADD = insert(items)
ADD_RETURNING = insert(items).returning(items.c.id)
REMOVE_EXACT = delete(items).where(
    items.c.id == bindparam("b_id"), items.c.name == bindparam("b_name"), items.c.at == bindparam("b_at")
)
ALL = select(items.c.id, items.c.name, items.c.at).order_by(items.c.id)
NAMES_IN = select(items.c.name).where(items.c.name.in_(bindparam("b_names", expanding=True))).order_by(items.c.name)


@pytest.fixture
def store(db: Database) -> Database:
    metadata.create_all(db.engine)
    return db


def _rows(db: Database) -> list[tuple[object, ...]]:
    with db.reader() as connection:
        return [tuple(row) for row in connection.execute(ALL)]


def test_bound_statements_run_as_run_runs_them(store: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"id": n, "name": f"n{n}", "at": NOW + timedelta(seconds=n)} for n in range(1, 4)]
    added = bind(store.engine.dialect, ADD, rows)
    rows.append({"id": 9, "name": "late", "at": NOW})  # after bind: not part of what runs
    exact = bind(
        store.engine.dialect, REMOVE_EXACT,
        [{"b_id": 1, "b_name": "n1", "b_at": NOW + timedelta(seconds=1)}, {"b_id": 2, "b_name": "n2", "b_at": NOW}],
    )  # fmt: skip

    def unbound(*_args: object) -> object:
        raise AssertionError("parameters processed again in the transaction")

    monkeypatch.setattr(fastsql._Plan, "parameters", unbound)
    with store.connection() as connection:
        result = run_bound(connection, added)
        assert isinstance(result, Rows) and result.rowcount == 3
        removed = run_bound(connection, exact)  # the second row's time differs: only the first matches
        assert isinstance(removed, Rows) and removed.rowcount == 1
    assert _rows(store) == [(2, "n2", NOW + timedelta(seconds=2)), (3, "n3", NOW + timedelta(seconds=3))]


def test_a_single_bound_statement_with_returning(store: Database) -> None:
    bound = bind(store.engine.dialect, ADD_RETURNING, {"name": "one", "at": NOW})
    with store.connection() as connection:
        new_id = run_bound(connection, bound).scalar_one()
    assert _rows(store) == [(new_id, "one", NOW)]


def test_what_the_cursor_cannot_run_goes_through_run(store: Database) -> None:
    with store.connection() as connection:
        run_bound(connection, bind(store.engine.dialect, ADD, [{"name": "a", "at": NOW}, {"name": "b", "at": NOW}]))
        names = run_bound(connection, bind(store.engine.dialect, NAMES_IN, {"b_names": ["b", "a", "z"]}))
        assert isinstance(names, CursorResult)  # expanding IN: Connection.execute
        assert list(names.scalars()) == ["a", "b"]


def test_bound_for_another_dialect_is_bound_again(store: Database) -> None:
    other = postgresql.dialect() if store.dialect == "sqlite" else sqlite.dialect()  # type: ignore[no-untyped-call]
    bound = bind(other, ADD, [{"id": 5, "name": "x", "at": NOW}])
    with store.connection() as connection:
        assert run_bound(connection, bound).rowcount == 1
    assert _rows(store) == [(5, "x", NOW)]
