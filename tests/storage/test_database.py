"""The Database handle: migrations, pragmas, transactions and error reporting."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import StatementError

from candor.errors import CandorError, ErrorKind
from candor.policy.algorithms import KeyAlgorithm
from candor.storage import AuditEvent, Base, Database, head_revision
from candor.storage.models import KEY_ALGORITHMS

TABLES = {"keys", "issuers", "serials", "certificates", "audit_events"}


def _event(seq: int, occurred_at: datetime) -> AuditEvent:
    return AuditEvent(
        seq=seq,
        occurred_at=occurred_at,
        actor="t",
        action="a",
        subject="s",
        outcome="info",
        details="{}",
        prev_hash=f"{seq:064x}",
        hash=f"{seq + 1000:064x}",
    )


def test_fresh_database_migrates_to_head(database_url: str) -> None:
    database = Database(database_url)
    try:
        assert database.current_revision() is None
        database.upgrade()
        assert database.current_revision() == head_revision() == database.head_revision() == "0016"
        assert set(inspect(database.engine).get_table_names()) >= TABLES
        database.upgrade()  # a second run is a no-op
        assert database.current_revision() == head_revision()
    finally:
        database.dispose()


def test_models_match_migrations(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_constraints_are_named_in_the_database(db: Database) -> None:
    inspector = inspect(db.engine)
    serial_uniques = {c["name"] for c in inspector.get_unique_constraints("serials")}
    assert "uq_serials_issuer_serial" in serial_uniques
    assert "uq_certificates_serial_kind" in {c["name"] for c in inspector.get_unique_constraints("certificates")}
    assert "uq_audit_events_prev_hash" in {c["name"] for c in inspector.get_unique_constraints("audit_events")}
    assert "ck_serials_status" in {c["name"] for c in inspector.get_check_constraints("serials")}


def test_keys_table_cannot_hold_private_material(db: Database) -> None:
    columns = {c["name"] for c in inspect(db.engine).get_columns("keys")}
    assert columns == {
        "id",
        "label",
        "store",
        "backend",
        "algorithm",
        "handle",
        "public_key_der",
        "spki_sha256",
        "purpose",
        "created_at",
    }


def test_key_algorithm_check_covers_every_algorithm() -> None:
    assert set(KEY_ALGORITHMS) == {a.value for a in KeyAlgorithm}


def test_sqlite_pragmas(tmp_path: object) -> None:
    database = Database(f"sqlite:///{tmp_path}/p.db")
    try:
        with database.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        database.dispose()


def test_session_commits_on_success_and_rolls_back_on_error(db: Database) -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    with db.session() as session:
        session.add(_event(1, moment))

    def fail_after_writing() -> None:
        with db.session() as session:
            session.add(_event(2, moment))
            session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_after_writing()
    with db.session() as session:
        assert session.scalars(select(AuditEvent.seq)).all() == [1]


def test_times_come_back_utc_aware(db: Database) -> None:
    plus_five = timezone(timedelta(hours=5, minutes=30))
    written = datetime(2026, 6, 30, 23, 59, 59, 999999, tzinfo=plus_five)
    with db.session() as session:
        session.add(_event(1, written))
    with db.session() as session:
        if db.dialect == "postgresql":
            session.execute(text("SET LOCAL TIME ZONE 'America/New_York'"))
        read = session.scalars(select(AuditEvent.occurred_at)).one()
    assert read.tzinfo is UTC
    assert read == written
    assert read == datetime(2026, 6, 30, 18, 29, 59, 999999, tzinfo=UTC)


def test_naive_datetimes_are_refused(db: Database) -> None:
    def write_naive() -> None:
        with db.session() as session:
            session.add(_event(1, datetime(2026, 1, 1)))
            session.flush()

    with pytest.raises(StatementError, match="naive datetime"):
        write_naive()
    with db.session() as session:
        assert session.scalars(select(AuditEvent)).all() == []


def _unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("operation", ["upgrade", "session", "current_revision"])
def test_unreachable_database_is_one_line_storage_error(operation: str) -> None:
    database = Database(f"postgresql+psycopg://candor:hunter2@127.0.0.1:{_unused_port()}/candor")

    def use() -> None:
        if operation == "upgrade":
            database.upgrade()
        elif operation == "session":
            with database.session() as session:
                session.execute(text("SELECT 1"))
        else:
            database.current_revision()

    with pytest.raises(CandorError) as caught:
        use()
    error = caught.value
    assert error.kind is ErrorKind.STORAGE
    assert "\n" not in str(error)
    assert "hunter2" not in str(error)
    assert "127.0.0.1" in str(error)
    assert error.__cause__ is None


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u@h/db",
        "postgresql+psycopg2://u@h/db",
        "postgresql+asyncpg://u@h/db",
        "sqlite://",
        "sqlite:///:memory:",
        "not a url",
    ],
)
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(CandorError) as caught:
        Database(url)
    assert caught.value.kind is ErrorKind.STORAGE
