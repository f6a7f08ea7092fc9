"""The audit log on both backends: appending, verifying, and detecting tampering."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from candor.audit import GENESIS, AuditLog, ChainReport, event_hash, verify_chain
from candor.clock import FakeClock
from candor.errors import CandorError, ErrorKind
from candor.storage import AuditEvent, Database
from candor.storage.dberrors import unique_violation

START = datetime(2026, 3, 1, 9, 0, 0, 250000, tzinfo=UTC)
COLUMNS = ("occurred_at", "actor", "action", "subject", "outcome", "details", "prev_hash", "hash")


def _record(db: Database, log: AuditLog, count: int, *, actor: str = "operator:alice") -> None:
    for index in range(count):
        with db.session() as session:
            log.record(
                session,
                actor=actor,
                action="serial.reserve",
                subject=f"serial:{index:04x}",
                outcome="success",
                details={"index": index, "order": f"o-{index}", "nested": {"ok": True}},
            )


def _verify(db: Database, **kwargs: Any) -> ChainReport:
    with db.session() as session:
        return verify_chain(session, **kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def chain(db: Database, clock: FakeClock) -> Database:
    """A database holding 20 intact events, one second apart."""
    log = AuditLog(clock)
    for _ in range(20):
        clock.advance(timedelta(seconds=1))
        _record(db, log, 1)
    return db


def test_twenty_events_verify(chain: Database) -> None:
    report = _verify(chain)
    with chain.session() as session:
        last = session.get(AuditEvent, 20)
        first = session.get(AuditEvent, 1)
    assert last is not None
    assert first is not None
    assert report == ChainReport(True, 20, 20, last.hash)
    assert first.prev_hash == GENESIS
    assert first.occurred_at == START + timedelta(seconds=1)
    assert first.occurred_at.tzinfo is UTC


def test_stored_hash_is_the_published_function(chain: Database) -> None:
    with chain.session() as session:
        event = session.get(AuditEvent, 3)
    assert event is not None
    assert event.hash == event_hash(
        seq=3,
        occurred_at=event.occurred_at,
        actor=event.actor,
        action=event.action,
        subject=event.subject,
        outcome=event.outcome,
        details=json.loads(event.details),
        prev_hash=event.prev_hash,
    )


def test_empty_log_is_ok(db: Database) -> None:
    assert _verify(db) == ChainReport(True, 0, 0, GENESIS)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("details", '{"index":99,"nested":{"ok":true},"order":"o-0"}'),
        ("details", '{"index": 0, "nested": {"ok": true}, "order": "o-0"}'),  # same JSON, not canonical
        ("actor", "operator:mallory"),
        ("action", "serial.revoke"),
        ("subject", "serial:ffff"),
        ("outcome", "failure"),
        ("occurred_at", START + timedelta(days=1)),
    ],
)
def test_edited_row_is_named(chain: Database, column: str, value: object) -> None:
    with chain.engine.begin() as connection:
        connection.execute(update(AuditEvent).where(AuditEvent.seq == 7).values({column: value}))
    report = _verify(chain)
    assert not report.ok
    assert report.broken_seq == 7
    assert report.problem == "event 7: stored hash does not match its contents"
    assert report.head_seq == 6
    assert report.events_checked == 7


def test_edit_with_recomputed_hash_breaks_the_next_link(chain: Database) -> None:
    with chain.session() as session:
        event = session.get(AuditEvent, 7)
        assert event is not None
        event.actor = "operator:mallory"
        event.hash = event_hash(
            seq=7,
            occurred_at=event.occurred_at,
            actor=event.actor,
            action=event.action,
            subject=event.subject,
            outcome=event.outcome,
            details={"index": 0, "nested": {"ok": True}, "order": "o-0"},
            prev_hash=event.prev_hash,
        )
        event.details = '{"index":0,"nested":{"ok":true},"order":"o-0"}'
    report = _verify(chain)
    assert report.broken_seq == 8
    assert report.problem == "event 8: previous-hash link does not match event 7"


def test_deleted_row_names_the_row_after_the_gap(chain: Database) -> None:
    with chain.engine.begin() as connection:
        connection.execute(delete(AuditEvent).where(AuditEvent.seq == 10))
    report = _verify(chain)
    assert not report.ok
    assert report.broken_seq == 11
    assert report.problem == "event 11: sequence gap after event 9"


def test_deleted_first_row_is_detected(chain: Database) -> None:
    with chain.engine.begin() as connection:
        connection.execute(delete(AuditEvent).where(AuditEvent.seq == 1))
    report = _verify(chain)
    assert report.broken_seq == 2
    assert report.problem == "event 2: sequence gap at the start of the log"


def test_swapped_contents_are_named(chain: Database) -> None:
    with chain.engine.begin() as connection:
        rows = {row.seq: row for row in connection.execute(select(AuditEvent).where(AuditEvent.seq.in_([5, 6])))}
        # swap in two steps so UNIQUE(prev_hash) and UNIQUE(hash) never see a duplicate mid-way
        for seq in (5, 6):
            placeholder = update(AuditEvent).where(AuditEvent.seq == seq)
            connection.execute(placeholder.values(prev_hash=f"{seq:064x}", hash=f"{seq + 100:064x}"))
        for seq, other in ((5, 6), (6, 5)):
            values = {column: getattr(rows[other], column) for column in COLUMNS}
            connection.execute(update(AuditEvent).where(AuditEvent.seq == seq).values(values))
    report = _verify(chain)
    assert not report.ok
    assert report.broken_seq == 5
    assert report.problem is not None
    assert report.problem.startswith("event 5: ")


def test_swapped_sequence_numbers_are_named(chain: Database) -> None:
    with chain.engine.begin() as connection:
        for old, new in ((5, 1000), (6, 5), (1000, 6)):
            connection.execute(update(AuditEvent).where(AuditEvent.seq == old).values(seq=new))
    report = _verify(chain)
    assert not report.ok
    assert report.broken_seq == 5
    assert report.problem is not None
    assert report.problem.startswith("event 5: ")


def test_truncated_tail_is_caught_by_the_anchor(chain: Database) -> None:
    anchor = (_verify(chain).head_seq, _verify(chain).head_hash)
    assert _verify(chain, expected_head=anchor).ok
    with chain.engine.begin() as connection:
        connection.execute(delete(AuditEvent).where(AuditEvent.seq >= 18))
    assert _verify(chain).ok  # without an anchor, a shorter intact chain looks fine
    report = _verify(chain, expected_head=anchor)
    assert not report.ok
    assert report.head_seq == 17
    assert report.problem is not None
    assert "truncated" in report.problem


def test_anchor_with_wrong_hash_fails(chain: Database) -> None:
    report = _verify(chain, expected_head=(12, "f" * 64))
    assert report.broken_seq == 12


def test_unique_prev_hash_prevents_a_fork(chain: Database) -> None:
    with chain.session() as session:
        head = session.get(AuditEvent, 20)
    assert head is not None
    fork = {
        "seq": 21,
        "occurred_at": START,
        "actor": "x",
        "action": "x",
        "subject": "x",
        "outcome": "info",
        "details": "{}",
        "prev_hash": head.prev_hash,  # chains onto event 19, like event 20 already does
        "hash": "a" * 64,
    }
    with pytest.raises(IntegrityError) as caught, chain.engine.begin() as connection:
        connection.execute(insert(AuditEvent), [fork])
    assert unique_violation(caught.value) == "uq_audit_events_prev_hash"


def test_chaining_onto_a_taken_head_is_a_conflict(chain: Database, clock: FakeClock) -> None:
    # Make event 5 claim event 20 as its predecessor: the next append then collides on UNIQUE(prev_hash),
    # exactly as a second writer chaining onto the same head would.
    with chain.session() as session:
        head = session.get(AuditEvent, 20)
        assert head is not None
        head_hash = head.hash
    with chain.engine.begin() as connection:
        connection.execute(update(AuditEvent).where(AuditEvent.seq == 5).values(prev_hash=head_hash))
    log = AuditLog(clock)
    with chain.session() as session:
        with pytest.raises(CandorError) as caught:
            log.record(session, actor="a", action="b", subject="c", outcome="info", details={})
        session.execute(select(AuditEvent.seq).limit(1)).all()  # the transaction is still usable
    assert caught.value.kind is ErrorKind.CONFLICT
    assert "another writer" in str(caught.value)


def test_event_commits_with_its_transaction(db: Database, clock: FakeClock) -> None:
    log = AuditLog(clock)

    def record_then_fail() -> None:
        with db.session() as session:
            log.record(session, actor="a", action="b", subject="c", outcome="info", details={})
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        record_then_fail()
    assert _verify(db).events_checked == 0
    with db.session() as session:
        first = log.record(session, actor="a", action="b", subject="c", outcome="info", details={})
        second = log.record(session, actor="a", action="b", subject="c", outcome="info", details={})
    assert (first.seq, second.seq) == (1, 2)
    assert second.prev_hash == first.hash
    assert _verify(db).ok


@pytest.mark.parametrize(
    "arguments",
    [
        {"outcome": "maybe"},
        {"details": {"when": START}},
        {"details": ["not", "an", "object"]},
        {"details": {"k": float("nan")}},
        {"actor": ""},
        {"actor": "two\nlines"},
        {"subject": "x" * 513},
    ],
)
def test_bad_events_are_refused(db: Database, clock: FakeClock, arguments: dict[str, Any]) -> None:
    log = AuditLog(clock)
    fields: dict[str, Any] = {"actor": "a", "action": "b", "subject": "c", "outcome": "info", "details": {}}
    with pytest.raises(CandorError) as caught, db.session() as session:
        log.record(session, **{**fields, **arguments})
    assert caught.value.kind is ErrorKind.INTERNAL


@pytest.mark.slow
def test_concurrent_appends_keep_one_chain(db: Database, clock: FakeClock) -> None:
    log = AuditLog(clock)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def writer(number: int) -> None:
        try:
            start.wait()
            _record(db, log, 20, actor=f"writer:{number}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    report = _verify(db)
    assert report.ok, report.problem
    assert report.events_checked == report.head_seq == 80
    with db.session() as session:
        actors = session.scalars(select(AuditEvent.actor)).all()
    assert sorted(set(actors)) == [f"writer:{n}" for n in range(4)]
