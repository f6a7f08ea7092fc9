"""SQLite sessions of different processes queue on ``flock`` of ``<database>.lock`` (``candor serve``
workers), including a process forked with the same :class:`Database` object; PostgreSQL needs no such file.
Readers (``Database.reader``) queue behind nobody."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from candor.errors import CandorError, ErrorKind
from candor.storage import Database


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'candor.db'}")
    db.upgrade()
    return db


def _forked(work: object) -> int:
    """Run *work* in a forked child; its pid. The child exits 0 if work returned, 1 if it raised."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            work()  # type: ignore[operator]
            code = 0
        finally:
            os._exit(code)
    return pid


def _exit_code(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_forked_process_waits_for_the_parents_transaction(sqlite_db: Database, tmp_path: Path) -> None:
    inside, entered = tmp_path / "parent-inside", tmp_path / "child-entered"

    def child() -> None:
        _wait_for(inside)
        with sqlite_db.session() as session:  # the parent's Database object, inherited across fork
            entered.write_text(str(time.monotonic()))
            session.execute(text("SELECT 1"))

    pid = _forked(child)  # (a fork inside an open SQLite transaction is not supported: SQLite's own lock state)
    with sqlite_db.session() as session:
        session.execute(text("SELECT 1"))
        inside.write_text("")
        time.sleep(0.5)
        assert not entered.exists()  # queued on the lock file, not on SQLite's sleeping busy handler
        released = time.monotonic()
    assert _exit_code(pid) == 0
    assert float(entered.read_text()) >= released
    assert (tmp_path / "candor.db.lock").exists()


def test_nested_sessions_keep_the_file_lock_until_the_outer_one_ends(sqlite_db: Database, tmp_path: Path) -> None:
    inside, entered = tmp_path / "parent-inside", tmp_path / "child-entered"

    def child() -> None:
        _wait_for(inside)
        with sqlite_db.session():
            entered.write_text("in")

    pid = _forked(child)
    with sqlite_db.session():
        with sqlite_db.session():
            pass
        inside.write_text("")
        time.sleep(0.3)
        assert not entered.exists()
    assert _exit_code(pid) == 0
    assert entered.read_text() == "in"


def test_processes_writing_at_once_all_commit(sqlite_db: Database) -> None:
    with sqlite_db.session() as session:
        session.execute(text("CREATE TABLE tally (n INTEGER NOT NULL)"))

    def writer() -> None:
        for _ in range(50):
            with sqlite_db.connection() as connection:
                connection.execute(text("INSERT INTO tally (n) VALUES (1)"))

    pids = [_forked(writer) for _ in range(4)]
    assert [_exit_code(pid) for pid in pids] == [0, 0, 0, 0]
    with sqlite_db.session() as session:
        assert session.execute(text("SELECT count(*) FROM tally")).scalar_one() == 200


def test_postgresql_has_no_lock_file(postgres_schema_url: str, tmp_path: Path) -> None:
    db = Database(postgres_schema_url)
    try:
        with db.session() as session:
            session.execute(text("SELECT 1"))
        assert db._lock_path is None
    finally:
        db.dispose()


def test_a_reader_neither_waits_for_a_writer_nor_writes(db: Database) -> None:
    """Database.reader(): a read-only transaction. On SQLite it does not queue behind a writer that holds the
    write lock (it reads the last committed state) and, like PostgreSQL's READ ONLY, refuses to write."""
    with db.connection() as connection:
        connection.execute(text("INSERT INTO nonces (value, expires_at) VALUES ('committed', '2030-01-01')"))
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with db.connection() as connection:
            connection.execute(text("INSERT INTO nonces (value, expires_at) VALUES ('uncommitted', '2030-01-01')"))
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(30)
        started = time.monotonic()
        with db.reader() as connection:
            seen = sorted(connection.execute(text("SELECT value FROM nonces")).scalars())
        assert time.monotonic() - started < 5  # the writer holds its transaction for up to 30 s
        assert seen == ["committed"]
    finally:
        release.set()
        thread.join()
    with pytest.raises(CandorError) as refused, db.reader() as connection:
        connection.execute(text("INSERT INTO nonces (value, expires_at) VALUES ('x', '2030-01-01')"))
    assert refused.value.kind is ErrorKind.STORAGE
    with db.connection() as connection:  # and the pooled connection writes again afterwards
        connection.execute(text("INSERT INTO nonces (value, expires_at) VALUES ('y', '2030-01-01')"))
