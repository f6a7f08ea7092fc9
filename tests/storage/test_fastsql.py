"""candor.storage.fastsql runs built statements on the driver's cursor with SQLAlchemy's own SQL, parameter and
row processing: on both backends every statement gives what ``Connection.execute`` gives (times, booleans,
bytes, NULLs, RETURNING, rowcounts, executemany), driver errors are SQLAlchemy's exception classes, and what
it cannot reproduce (expanding IN, Python-side defaults, no transaction) goes through ``Connection.execute``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError

from candor.storage import Database
from candor.storage.fastsql import FEW, Rows, rows_for_each, run
from candor.storage.types import UTCDateTime

NOW = datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=UTC)
metadata = MetaData()
things = Table(
    "fastsql_things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("at", UTCDateTime, nullable=False),
    Column("flag", Boolean, nullable=False),
    Column("blob", LargeBinary),
    Column("note", String(64), default="none"),  # a Python-side default
)

INSERT = insert(things).returning(things.c.id)
INSERT_PLAIN = insert(things)
BY_NAME = select(things.c.id, things.c.name, things.c.at, things.c.flag, things.c.blob).where(
    things.c.name == bindparam("b_name")
)
WINDOW = select(func.count(), func.min(things.c.at)).where(things.c.at > bindparam("since"), things.c.flag.is_(True))
FLIP = update(things).where(things.c.name == bindparam("b_name"), things.c.flag == bindparam("b_flag"))
NAMES_IN = select(things.c.name).where(things.c.name.in_(bindparam("b_names", expanding=True))).order_by(things.c.name)
DROP = delete(things).where(things.c.at < bindparam("before"))


@pytest.fixture
def store(db: Database) -> Database:
    metadata.create_all(db.engine)
    return db


def _row(name: str, *, at: datetime = NOW, flag: bool = True, blob: bytes | None = b"\x00\xff") -> dict[str, object]:
    return {"name": name, "at": at, "flag": flag, "blob": blob, "note": "given"}


def test_rows_are_what_sqlalchemy_gives(store: Database) -> None:
    with store.connection() as connection:
        new_id = run(connection, INSERT, _row("a")).scalar_one()
        run(connection, INSERT_PLAIN, [_row("b", flag=False, blob=None), _row("c", at=NOW - timedelta(days=2))])
    with store.reader() as connection:
        for name in ("a", "b", "c"):
            fast = run(connection, BY_NAME, {"b_name": name}).one()
            slow = connection.execute(BY_NAME, {"b_name": name}).one()
            assert tuple(fast) == tuple(slow)
            assert fast.at == slow.at and fast.at.tzinfo is not None  # UTCDateTime's result processing
            assert type(fast.flag) is bool and fast.blob == slow.blob
        assert run(connection, BY_NAME, {"b_name": "a"}).one().id == new_id
        assert run(connection, BY_NAME, {"b_name": "a"}).one().at == NOW  # microseconds and zone survive
        assert run(connection, BY_NAME, {"b_name": "zz"}).one_or_none() is None
        since = {"since": NOW - timedelta(days=1)}
        assert tuple(run(connection, WINDOW, since).one()) == tuple(connection.execute(WINDOW, since).one())
        assert run(connection, WINDOW, since).one()[0] == 1  # the bound literal True of the statement is kept


def test_updates_and_deletes_report_their_rowcount(store: Database) -> None:
    with store.connection() as connection:
        run(connection, INSERT_PLAIN, [_row("a"), _row("b")])
        assert run(connection, FLIP, {"b_name": "a", "b_flag": True, "flag": False}).rowcount == 1
        assert run(connection, FLIP, {"b_name": "a", "b_flag": True, "flag": False}).rowcount == 0  # claimed once
        assert run(connection, DROP, {"before": NOW + timedelta(seconds=1)}).rowcount == 2
    with store.reader() as connection:
        assert run(connection, BY_NAME, {"b_name": "a"}).first() is None


def test_a_constraint_violation_is_sqlalchemys_integrity_error(store: Database) -> None:
    with store.connection() as connection:
        run(connection, INSERT, _row("a"))
        with pytest.raises(IntegrityError):
            run(connection, INSERT, _row("a"))


def test_what_it_cannot_reproduce_goes_through_connection_execute(store: Database) -> None:
    with store.connection() as connection:
        run(connection, INSERT_PLAIN, [_row("a"), _row("b")])
        defaulted = {"name": "d", "at": NOW, "flag": True, "blob": None}  # note comes from the Python default
        assert isinstance(run(connection, INSERT, defaulted), CursorResult)
        expanding = run(connection, NAMES_IN, {"b_names": ["a", "d", "x"]})
        assert isinstance(expanding, CursorResult) and list(expanding.scalars()) == ["a", "d"]
        assert isinstance(run(connection, BY_NAME, {"b_name": "a"}), Rows)
    with store.reader() as connection:
        assert run(connection, select(things.c.note).where(things.c.name == "d")).scalar() == "none"
    with store.engine.connect() as connection:  # not in a transaction yet: SQLAlchemy begins it as usual
        assert isinstance(run(connection, BY_NAME, {"b_name": "a"}), CursorResult)
        connection.rollback()


NAME_IS = select(things.c.name).where(things.c.name == bindparam("b_names"))


@pytest.mark.parametrize("count", [0, 1, FEW, FEW + 1, 30])
def test_rows_for_each_value_are_the_in_lists_rows(store: Database, count: int) -> None:
    with store.connection() as connection:
        run(connection, INSERT_PLAIN, [_row(f"n{i:02d}") for i in range(0, 40, 2)])  # the even ones exist
    wanted = [f"n{i:02d}" for i in range(count)]
    with store.reader() as connection:
        rows = rows_for_each(connection, NAME_IS, NAMES_IN, {}, "b_names", wanted)
        found = sorted(row.name for row in rows)
        assert found == [name for name in wanted if int(name[1:]) % 2 == 0]
        if wanted:
            assert found == list(connection.execute(NAMES_IN, {"b_names": wanted}).scalars())
