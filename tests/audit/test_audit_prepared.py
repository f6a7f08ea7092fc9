"""AuditLog.prepare then AuditLog.append: the event's checks, canonical JSON and content hash before the transaction,
only the insert in it; the same rows as AuditLog.record, on sessions and Core connections, on both backends."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from candor.audit import AuditLog, PreparedEvent, verify_chain
from candor.audit import log as log_module
from candor.audit.chain import content_hash
from candor.audit.sequencer import chain_all_pending
from candor.clock import FakeClock
from candor.errors import CandorError, ErrorKind
from candor.storage import AuditEvent, Database, fastsql
from candor.storage.models import AuditPending

START = datetime(2026, 3, 1, 9, 0, 0, 500000, tzinfo=UTC)
DER = (b"\x30\x82\x05\x00" * 300).hex()
EVENT: dict[str, Any] = {
    "actor": "signer", "action": "certificate.sign", "subject": "order 7", "outcome": "success",
    "details": {"issuer": "r1", "serial": "0a1b", "kind": "certificate", "der": DER, "note": "é"},
}  # fmt: skip
_PENDING_COLUMNS = ("occurred_at", "actor", "action", "subject", "outcome", "details", "content_hash")


def _pending_rows(db: Database) -> list[tuple[Any, ...]]:
    columns = [getattr(AuditPending, name) for name in _PENDING_COLUMNS]
    with db.reader() as connection:
        return [tuple(row) for row in connection.execute(select(*columns).order_by(AuditPending.id))]


def _chained(db: Database) -> int:
    with db.reader() as connection:
        return int(connection.execute(select(func.count()).select_from(AuditEvent)).scalar_one())


def _verified(db: Database) -> None:
    with db.session() as session:
        report = verify_chain(session)
    assert report.ok, report.problem
    assert report.pending == 0


@pytest.mark.parametrize("bound", [False, True], ids=["unbound", "bound"])
def test_prepare_then_append_stores_the_row_record_stores(db: Database, bound: bool) -> None:
    db.audit_sequenced = True
    log = AuditLog(FakeClock(START))
    with db.session() as session:
        assert log.record(session, **EVENT) is None
    prepared = log.prepare(**EVENT, dialect=db.engine.dialect if bound else None)
    assert (prepared.bound is not None) is bound
    with db.session() as session:
        assert log.append(session, prepared) is None
    recorded, appended = _pending_rows(db)
    assert appended == recorded
    assert appended[-1] == content_hash(
        occurred_at=START, actor="signer", action="certificate.sign", subject="order 7", outcome="success",
        details=EVENT["details"],
    )  # fmt: skip
    assert chain_all_pending(db) == 2
    _verified(db)


def test_append_does_no_serialising_or_hashing(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of prepare: in the transaction (the write lock held), append only inserts."""
    db.audit_sequenced = True
    prepared: PreparedEvent = AuditLog(FakeClock(START)).prepare(**EVENT)

    def refused(*_args: object, **_kwargs: object) -> str:
        raise AssertionError("serialised or hashed in the transaction")

    for name in ("canonical_details", "content_hash_of_text"):
        monkeypatch.setattr(log_module, name, refused)
    with db.session() as session:
        assert AuditLog(FakeClock(START)).append(session, prepared) is None
    assert len(_pending_rows(db)) == 1


def test_append_of_an_event_bound_for_the_dialect_only_executes(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    db.audit_sequenced = True
    prepared = AuditLog(FakeClock(START)).prepare(**EVENT, dialect=db.engine.dialect)

    def unbound(*_args: object) -> object:
        raise AssertionError("parameters processed in the transaction")

    monkeypatch.setattr(fastsql._Plan, "parameters", unbound)
    with db.session() as session:
        assert AuditLog(FakeClock(START)).append(session, prepared) is None
    monkeypatch.undo()
    assert len(_pending_rows(db)) == 1
    assert chain_all_pending(db) == 1
    _verified(db)


def test_an_event_bound_for_another_dialect_is_appended_all_the_same(db: Database) -> None:
    db.audit_sequenced = True
    other = postgresql.dialect() if db.dialect == "sqlite" else sqlite.dialect()  # type: ignore[no-untyped-call]
    prepared = AuditLog(FakeClock(START)).prepare(**EVENT, dialect=other)
    with db.session() as session:
        AuditLog(FakeClock(START)).append(session, prepared)
    assert _pending_rows(db)[0][-1] == prepared.content_hash
    assert chain_all_pending(db) == 1
    _verified(db)


def test_the_event_is_what_was_prepared(db: Database) -> None:
    """Its time is the time of prepare; the details dict changed afterwards changes nothing; it cannot be
    changed itself."""
    db.audit_sequenced = True
    clock = FakeClock(START)
    names = ["a.example"]
    details = {"serial": "0a1b", "names": names}
    prepared = AuditLog(clock).prepare(**{**EVENT, "details": details})
    names.append("b.example")
    clock.advance(timedelta(minutes=5))
    with pytest.raises(dataclasses.FrozenInstanceError):
        prepared.subject = "order 8"  # type: ignore[misc]
    with db.session() as session:
        AuditLog(clock).append(session, prepared)
    [row] = _pending_rows(db)
    assert row[0] == START
    assert row[5] == '{"names":["a.example"],"serial":"0a1b"}'
    assert chain_all_pending(db) == 1
    _verified(db)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"outcome": "done"}, "audit outcome 'done' is not one of"),
        ({"actor": "line\nbreak"}, "audit actor must not contain control characters"),
        ({"subject": "s" * 513}, "audit subject is longer than 512 characters"),
        ({"details": {"when": datetime(2026, 1, 1, tzinfo=UTC)}}, "audit details $.when: datetime is not JSON"),
        ({"details": {"ratio": float("nan")}}, "is not representable in JSON"),
    ],
)
def test_prepare_refuses_what_record_refuses_before_any_transaction(change: dict[str, Any], message: str) -> None:
    log = AuditLog(FakeClock(START))
    with pytest.raises(CandorError) as caught:
        log.prepare(**{**EVENT, **change})
    assert caught.value.kind is ErrorKind.INTERNAL
    assert message in caught.value.message


def test_append_on_an_unsequenced_session_chains_at_once(db: Database) -> None:
    log = AuditLog(FakeClock(START))
    first, second = log.prepare(**EVENT), log.prepare(**{**EVENT, "subject": "order 8"})
    with db.session() as session:
        event = log.append(session, first)
        assert event is not None and event.seq == 1
        event = log.append(session, second)
    assert event is not None and (event.seq, event.subject) == (2, "order 8")
    assert _chained(db) == 2
    _verified(db)


@pytest.mark.parametrize("sequenced", [True, False])
def test_append_on_a_connection(db: Database, sequenced: bool) -> None:
    log = AuditLog(FakeClock(START))
    prepared = log.prepare(**EVENT)
    with db.connection() as connection:
        event = log.append(connection, prepared, sequenced=sequenced)
    if sequenced:
        assert event is None
        assert (_chained(db), len(_pending_rows(db))) == (0, 1)
        assert chain_all_pending(db) == 1
    else:
        assert event is not None and (event.seq, event.action) == (1, "certificate.sign")
        assert (_chained(db), len(_pending_rows(db))) == (1, 0)
    _verified(db)


def test_append_on_a_connection_must_say_whether_it_is_sequenced(db: Database) -> None:
    prepared = AuditLog(FakeClock(START)).prepare(**EVENT)
    with pytest.raises(CandorError) as caught, db.connection() as connection:
        AuditLog(FakeClock(START)).append(connection, prepared)  # type: ignore[call-overload]
    assert caught.value.kind is ErrorKind.INTERNAL
    assert _pending_rows(db) == []


def test_a_prepared_event_appended_in_a_transaction_that_rolled_back_can_be_appended_in_the_retry(
    db: Database,
) -> None:
    db.audit_sequenced = True
    log = AuditLog(FakeClock(START))
    prepared = log.prepare(**EVENT)

    def attempt(fail: bool) -> None:
        with db.session() as session:
            log.append(session, prepared)
            if fail:
                raise CandorError(ErrorKind.CONFLICT, "the stage moved")

    with pytest.raises(CandorError):
        attempt(fail=True)
    attempt(fail=False)
    assert len(_pending_rows(db)) == 1
    assert chain_all_pending(db) == 1
    _verified(db)
