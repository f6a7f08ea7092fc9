"""The database handle: engine set-up, migrations and transactions.

SQLite (a file) and PostgreSQL (psycopg 3) are supported. On SQLite every transaction starts with
``BEGIN IMMEDIATE``, taking the write lock up front, so writers queue on ``busy_timeout`` instead of failing
halfway through; WAL lets readers of other connections proceed meanwhile. Sessions also queue on locks of
their own before SQLite's: SQLite's busy handler polls by sleeping up to 100 ms at a time, so under concurrent
requests most of a transaction's wall time went to sleeping while the lock was free. Threads of one process
queue on a lock in memory, processes (``candor serve`` workers, a CLI command beside the server) on
``flock`` of a file beside the database (``<database>.lock``); both wake the next waiter at once.
Failures to connect or migrate are :class:`CandorError` with ``ErrorKind.STORAGE`` and a one-line message that
never contains the password.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from candor.errors import CandorError, ErrorKind
from candor.storage.dberrors import one_line, translated

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# pg_advisory_xact_lock key serialising concurrent `upgrade()` runs ("candor-m" as a 64-bit integer).
MIGRATION_LOCK_KEY = 0x63616E646F722D6D
# Session.info key: this session's audit events are chained later by the deployment's sequencer.
AUDIT_SEQUENCED = "candor.audit_sequenced"


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest migration shipped with this version of Candor."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise CandorError(ErrorKind.INTERNAL, "no database migrations are packaged")
    return head


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module (it would not BEGIN before SELECT or DDL);
    # SQLAlchemy's "begin" event below emits BEGIN IMMEDIATE instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS:d}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # On the driver's connection: through exec_driver_sql this one statement cost as much as the rest of a short
    # transaction (an execution context per BEGIN, ~30 transactions per ACME order).
    _driver(connection).execute("BEGIN IMMEDIATE")


def _driver(connection: Connection) -> Any:
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    return dbapi_connection


def _sqlite_reader_on_connect(dbapi_connection: Any, record: Any) -> None:
    _sqlite_on_connect(dbapi_connection, record)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA query_only = ON")  # a reader's connection never writes
    finally:
        cursor.close()


def _sqlite_reader_on_begin(connection: Connection) -> None:
    # Deferred: the first SELECT takes a WAL snapshot, and no write lock is taken.
    _driver(connection).execute("BEGIN")


class _KeptConnections:
    """SQLite: connections kept open and handed out last-in first-out, one per transaction under way, instead of a
    pool checkout and return per transaction. A checkout, ``begin`` and the return (with the pool's reset) cost about
    90 µs of CPU here against 15 µs for ``begin`` and commit on a connection already open, and on every write that
    time is spent holding the one write lock. Writers are one at a time (a nested transaction of the same thread
    takes a second connection), so the list holds one or two write connections; readers keep as many as ran at
    once. A connection that was invalidated, or that is still in a transaction, is closed instead of kept."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._free: list[Connection] = []

    @contextmanager
    def take(self) -> Iterator[Connection]:
        """A connection outside any transaction, kept again after the block."""
        try:
            connection = self._free.pop()
        except IndexError:
            connection = self._engine.connect()
        try:
            yield connection
        finally:
            if connection.closed or connection.invalidated or connection.in_transaction():
                connection.close()  # rolls back what is still open
            else:
                self._free.append(connection)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection in a transaction: committed when the block ends, rolled back if it raises."""
        with self.take() as connection, connection.begin():
            yield connection

    def forget(self) -> None:
        """In a forked child: the connections are the parent's, left to the garbage collector unused (as
        ``Engine.dispose(close=False)`` leaves its pool's)."""
        self._free = []

    def close(self) -> None:
        while self._free:
            self._free.pop().close()


class Database:
    """One database, given by an SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://...``)."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise CandorError(ErrorKind.STORAGE, "database URL is not valid") from None
        self._secret = parsed.password if isinstance(parsed.password, str) else None
        self.display_url = parsed.render_as_string(hide_password=True)
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            if parsed.database in (None, "", ":memory:") or str(parsed.query.get("mode")) == "memory":
                raise CandorError(ErrorKind.STORAGE, "in-memory SQLite is not supported; give a file path")
        elif backend == "postgresql":
            if parsed.get_driver_name() != "psycopg":
                raise CandorError(ErrorKind.STORAGE, "PostgreSQL URLs must use psycopg 3: postgresql+psycopg://")
        else:
            raise CandorError(ErrorKind.STORAGE, f"database backend {backend!r} is not supported (sqlite, postgresql)")
        try:
            if backend == "sqlite":
                # no pool: the connections transactions run on are kept by _KeptConnections
                self.engine: Engine = create_engine(parsed, poolclass=NullPool)
                event.listen(self.engine, "connect", _sqlite_on_connect)
                event.listen(self.engine, "begin", _sqlite_on_begin)
                self._read_engine: Engine = create_engine(parsed, poolclass=NullPool)  # Database.reader()'s own
                event.listen(self._read_engine, "connect", _sqlite_reader_on_connect)
                event.listen(self._read_engine, "begin", _sqlite_reader_on_begin)
                self._kept: _KeptConnections | None = _KeptConnections(self.engine)
                self._kept_readers: _KeptConnections | None = _KeptConnections(self._read_engine)
            else:
                self.engine = create_engine(parsed, pool_pre_ping=True)
                self._read_engine = self.engine
                self._kept = self._kept_readers = None
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise CandorError(
                ErrorKind.STORAGE,
                f"cannot set up database {self.display_url}: {one_line(str(exc), secret=self._secret)}",
            ) from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time and every transaction here begins IMMEDIATE: queue in-process
        # sessions on a lock that wakes the next one at once (reentrant: a nested session in the same thread
        # behaves as it did without it).
        self._writer = threading.RLock() if backend == "sqlite" else None
        self._depth = 0  # sessions of the thread holding _writer (a nested one must not release the file lock)
        self._lock_path = Path(f"{parsed.database}.lock") if backend == "sqlite" else None
        self._lock_fd: int | None = None
        self._pid = os.getpid()
        # True where a sequencer chains the audit events this process appends (``candor serve``): sessions then
        # leave them pending instead of chaining each under the chain's lock (see candor.audit).
        self.audit_sequenced = False

    @property
    def dialect(self) -> str:
        """The backend: "sqlite" or "postgresql"."""
        return self.engine.dialect.name

    def __repr__(self) -> str:
        return f"Database({self.display_url!r})"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed when the block ends, rolled back if it raises.

        Objects stay usable after the block (``expire_on_commit=False``), detached from the session.
        Database failures leaving the block become :class:`CandorError`.
        """
        with self._queued():
            if self._kept is None:
                session = self._sessions(info={AUDIT_SEQUENCED: self.audit_sequenced})
                try:
                    with translated(f"error at {self.display_url}", secret=self._secret), session.begin():
                        yield session
                finally:
                    session.close()
                return
            with self._kept.take() as connection:  # the session begins and ends its transaction on it
                session = Session(bind=connection, expire_on_commit=False, info={AUDIT_SEQUENCED: self.audit_sequenced})
                try:
                    with translated(f"error at {self.display_url}", secret=self._secret), session.begin():
                        yield session
                finally:
                    session.close()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A Core connection in a transaction (no ORM session): for the few statements on the hot path of every
        request, where a session's unit of work costs more than the SQL. Same queueing and errors as
        :meth:`session`."""
        with (
            self._queued(),
            translated(f"error at {self.display_url}", secret=self._secret),
            self.engine.begin() if self._kept is None else self._kept.begin() as connection,
        ):
            yield connection

    @contextmanager
    def reader(self) -> Iterator[Connection]:
        """A Core connection in a read-only transaction, for requests that only read. On SQLite it neither queues
        behind writers (in-process lock, ``flock``) nor takes the write lock: a deferred ``BEGIN`` reads a
        consistent snapshot of the WAL while one writer goes on (bench/acme.py: reads inside the write queue
        were about 8 % of the time it was held), on connections of their own (``PRAGMA query_only``: a statement
        that writes fails). On PostgreSQL a ``READ ONLY`` transaction. Same errors as :meth:`connection`."""
        if self._pid != os.getpid():
            self._after_fork()
        with (
            translated(f"error at {self.display_url}", secret=self._secret),
            self._read_engine.begin() if self._kept_readers is None else self._kept_readers.begin() as connection,
        ):
            if self.dialect == "postgresql":
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            yield connection

    def _after_fork(self) -> None:
        """First use in a forked process: nothing the parent held is ours. Pooled connections are dropped
        without closing them (they are the parent's), and the locks start free: a lock file descriptor shared
        with the parent would share its lock instead of excluding it. (Forking inside an open SQLite
        transaction is not supported: SQLite's in-process lock state would be the parent's.)"""
        self.engine.dispose(close=False)
        self._read_engine.dispose(close=False)
        for kept in (self._kept, self._kept_readers):
            if kept is not None:
                kept.forget()
        if self._writer is not None:
            self._writer = threading.RLock()
        self._depth = 0
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # the parent's descriptor stays open, and its lock held, in the parent
            self._lock_fd = None
        self._pid = os.getpid()

    @contextmanager
    def _queued(self) -> Iterator[None]:
        if self._pid != os.getpid():
            self._after_fork()
        if self._writer is None:
            yield
            return
        if not self._writer.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise CandorError(ErrorKind.STORAGE, f"error at {self.display_url}: database is locked")
        try:
            if self._depth == 0:
                self._lock_file()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._unlock_file()
        finally:
            self._writer.release()

    def _lock_file(self) -> None:
        """Queue behind other processes' transactions (blocking ``flock``: the kernel wakes the next waiter when
        the holder ends its transaction, or dies). The descriptor is this process's own (see _after_fork)."""
        assert self._lock_path is not None
        if self._lock_fd is None:
            try:
                self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise CandorError(
                    ErrorKind.STORAGE, f"error at {self.display_url}: lock file {self._lock_path}: {exc.strerror}"
                ) from None
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    def _unlock_file(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def upgrade(self, revision: str = "head") -> None:
        """Apply the packaged migrations up to *revision*, in one transaction."""
        config = _alembic_config()
        try:
            with self.engine.begin() as connection:
                if self.dialect == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
        except CommandError as exc:
            raise CandorError(
                ErrorKind.STORAGE,
                f"cannot migrate {self.display_url}: {one_line(str(exc), secret=self._secret)}",
            ) from None
        except DBAPIError as exc:
            orig = exc.orig if exc.orig is not None else exc
            detail = one_line(f"{type(orig).__name__}: {orig}", secret=self._secret)
            raise CandorError(ErrorKind.STORAGE, f"cannot migrate {self.display_url}: {detail}") from None

    def current_revision(self) -> str | None:
        """The migration the database is at, or None if it has never been migrated."""
        with (
            translated(f"error at {self.display_url}", secret=self._secret),
            self.engine.connect() as connection,
        ):
            return MigrationContext.configure(connection).get_current_revision()

    def head_revision(self) -> str:
        """The newest packaged migration (what :meth:`upgrade` brings the database to)."""
        return head_revision()

    def dispose(self) -> None:
        """Close every pooled or kept connection (and this process's lock file)."""
        for kept in (self._kept, self._kept_readers):
            if kept is not None and self._pid == os.getpid():
                kept.close()
        self.engine.dispose()
        self._read_engine.dispose()
        if self._lock_fd is not None and self._pid == os.getpid() and self._depth == 0:
            os.close(self._lock_fd)
            self._lock_fd = None
