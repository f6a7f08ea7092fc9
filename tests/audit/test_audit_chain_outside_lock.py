"""The sequencer's pass links a batch before its write transaction, which only stores it: whatever changes
between the read and the write (another writer chaining, a second sequencer, a pending row changed or removed)
is found under the lock, and the batch is then linked again there, as the lock holder sees it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, delete, func, insert, select, update

from candor.audit import GENESIS, AuditLog, event_hash, verify_chain
from candor.audit import sequencer as sequencer_module
from candor.audit.chain import canonical_details, content_hash
from candor.audit.sequencer import chain_all_pending
from candor.clock import FakeClock
from candor.errors import CandorError, ErrorKind
from candor.storage import AuditEvent, Database
from candor.storage.models import AuditPending

START = datetime(2026, 3, 1, 9, 0, 0, 125000, tzinfo=UTC)
COUNT = 5


@pytest.fixture
def pending(db: Database) -> Database:
    """A sequenced database with COUNT pending events, subjects "event 0".."event 4", one second apart."""
    db.audit_sequenced = True
    clock = FakeClock(START)
    log = AuditLog(clock)
    for index in range(COUNT):
        clock.advance(timedelta(seconds=1))
        with db.session() as session:
            log.record(
                session, actor="acme:a", action="certificate.sign", subject=f"event {index}", outcome="success",
                details={"index": index, "der": (b"\x30\x82" + bytes([index]) * 600).hex()},
            )  # fmt: skip
    return db


def _between_read_and_write(db: Database, monkeypatch: pytest.MonkeyPatch, change: Callable[[], object]) -> None:
    """Run *change* once, after the pass has read and linked its batch and before its write transaction."""
    original = db.connection
    changed: list[bool] = []

    @contextmanager
    def connection() -> Iterator[Connection]:
        if not changed:
            changed.append(True)
            change()
        with original() as opened:
            yield opened

    monkeypatch.setattr(db, "connection", connection)


def _pending_ids(db: Database) -> list[int]:
    with db.reader() as connection:
        return list(connection.scalars(select(AuditPending.id).order_by(AuditPending.id)))


def _chained_subjects(db: Database) -> list[str]:
    with db.reader() as connection:
        return list(connection.scalars(select(AuditEvent.subject).order_by(AuditEvent.seq)))


def _verified(db: Database) -> None:
    with db.session() as session:
        report = verify_chain(session, chain_pending_first=False)
    assert report.ok, report.problem
    assert report.pending == 0


def test_an_unchanged_batch_is_stored_without_linking_it_again(
    pending: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def relink(*_args: object, **_kwargs: object) -> object:
        raise AssertionError("the batch was linked again under the lock")

    monkeypatch.setattr(sequencer_module, "chain_pending", relink)
    assert chain_all_pending(pending) == COUNT
    assert _chained_subjects(pending) == [f"event {n}" for n in range(COUNT)]
    _verified(pending)


def test_another_writer_chaining_meanwhile_makes_no_fork_and_chains_nothing_twice(
    pending: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsequenced_writer() -> None:  # a CLI command: chains everything pending, then its own event
        pending.audit_sequenced = False
        with pending.session() as session:
            AuditLog(FakeClock(START + timedelta(minutes=1))).record(
                session, actor="operator", action="revoke", subject="cli", outcome="success", details={}
            )
        pending.audit_sequenced = True

    _between_read_and_write(pending, monkeypatch, unsequenced_writer)
    assert chain_all_pending(pending) == 0  # the writer chained the batch first
    assert _chained_subjects(pending) == [f"event {n}" for n in range(COUNT)] + ["cli"]
    _verified(pending)


def test_a_second_sequencer_chaining_meanwhile_chains_nothing_twice(
    database_url: str, pending: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = Database(database_url)  # another worker's handle
    try:
        _between_read_and_write(pending, monkeypatch, lambda: chain_all_pending(second))
        assert chain_all_pending(pending) == 0
    finally:
        second.dispose()
    assert _chained_subjects(pending) == [f"event {n}" for n in range(COUNT)]
    _verified(pending)


def test_a_head_moved_by_an_event_outside_the_batch_is_linked_after(
    pending: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's rows untouched, but the chain extended meanwhile (another writer's event): the batch goes after
    the new head, not onto the head it read (which would take the same seq and prev_hash: a fork)."""

    def extend_chain() -> None:
        values: dict[str, Any] = {
            "seq": 1, "occurred_at": START, "actor": "operator", "action": "revoke", "subject": "other",
            "outcome": "success", "details": "{}", "prev_hash": GENESIS,
        }  # fmt: skip
        values["hash"] = event_hash(**{**values, "details": {}})
        with pending.session() as session:
            session.execute(insert(AuditEvent), values)

    _between_read_and_write(pending, monkeypatch, extend_chain)
    assert chain_all_pending(pending) == COUNT
    assert _chained_subjects(pending) == ["other"] + [f"event {n}" for n in range(COUNT)]
    _verified(pending)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("details", '{"der":"00","index":2}'),
        ("actor", "acme:b"),
        ("outcome", "failure"),
        ("occurred_at", START + timedelta(hours=1)),
        ("content_hash", "0" * 64),
    ],
)
def test_a_pending_event_changed_meanwhile_stops_the_chain(
    pending: Database, monkeypatch: pytest.MonkeyPatch, column: str, value: object
) -> None:
    third = _pending_ids(pending)[2]

    def tamper() -> None:
        with pending.engine.begin() as connection:
            connection.execute(update(AuditPending).where(AuditPending.id == third).values({column: value}))

    _between_read_and_write(pending, monkeypatch, tamper)
    with pytest.raises(CandorError) as caught:
        chain_all_pending(pending)
    assert caught.value.kind is ErrorKind.INTEGRITY
    assert f"pending audit event {third}" in caught.value.message
    assert _chained_subjects(pending) == ["event 0", "event 1"]  # up to the changed one, as the lock holder saw
    assert len(_pending_ids(pending)) == COUNT - 2


def test_a_pending_event_rewritten_with_its_hash_meanwhile_is_chained_as_stored(
    pending: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Contents changed together with their content hash (indistinguishable from an event appended so): what is
    chained is what the database holds at the write, not the copy read before it."""
    third = _pending_ids(pending)[2]

    def rewrite() -> None:
        with pending.engine.begin() as connection:
            row = connection.execute(select(AuditPending).where(AuditPending.id == third)).one()
            details = {"index": 2, "der": "00"}
            digest = content_hash(
                occurred_at=row.occurred_at, actor=row.actor, action=row.action, subject="rewritten",
                outcome=row.outcome, details=details,
            )  # fmt: skip
            connection.execute(
                update(AuditPending)
                .where(AuditPending.id == third)
                .values(subject="rewritten", details=canonical_details(details), content_hash=digest)
            )

    _between_read_and_write(pending, monkeypatch, rewrite)
    assert chain_all_pending(pending) == COUNT
    assert _chained_subjects(pending) == ["event 0", "event 1", "rewritten", "event 3", "event 4"]
    _verified(pending)


def test_a_pending_event_removed_meanwhile_is_not_chained_from_the_copy_read(
    pending: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    third = _pending_ids(pending)[2]

    def remove() -> None:
        with pending.engine.begin() as connection:
            connection.execute(delete(AuditPending).where(AuditPending.id == third))

    _between_read_and_write(pending, monkeypatch, remove)
    assert chain_all_pending(pending) == COUNT - 1
    assert _chained_subjects(pending) == ["event 0", "event 1", "event 3", "event 4"]
    _verified(pending)


def test_a_refusal_is_made_on_what_the_lock_holder_reads(pending: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """An event that failed its check when read, and was put back before the write, is chained: the pass does not
    stop the CA on a copy it read without the lock."""
    third = _pending_ids(pending)[2]
    with pending.reader() as connection:
        original = connection.execute(select(AuditPending.subject).where(AuditPending.id == third)).scalar_one()
    with pending.engine.begin() as connection:
        connection.execute(update(AuditPending).where(AuditPending.id == third).values(subject="tampered"))

    def restore() -> None:
        with pending.engine.begin() as connection:
            connection.execute(update(AuditPending).where(AuditPending.id == third).values(subject=original))

    _between_read_and_write(pending, monkeypatch, restore)
    assert chain_all_pending(pending) == COUNT
    _verified(pending)
    with pending.reader() as connection:
        assert connection.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == COUNT


@pytest.mark.slow
def test_two_sequencers_and_a_chaining_writer_racing_appenders_leave_one_intact_chain(
    database_url: str, db: Database
) -> None:
    """Real races rather than a change placed between the read and the write: two sequencers (each pass reads and
    links, then stores or links again) and an unsequenced writer chaining at once, while three threads append."""
    db.audit_sequenced = True
    unsequenced = Database(database_url)  # a CLI command beside the server
    log = AuditLog(FakeClock(START))
    errors: list[BaseException] = []
    start = threading.Barrier(6)
    appending = threading.Event()

    def guarded(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                start.wait()
                work()
            except BaseException as exc:  # reported below
                errors.append(exc)

        return run

    def appender(number: int) -> Callable[[], None]:
        def work() -> None:
            for index in range(30):
                with db.session() as session:
                    log.record(session, actor=f"acme:{number}", action="order.create", subject=f"{number}/{index}",
                               outcome="success", details={"index": index, "der": "30" * 400})  # fmt: skip

        return work

    def sequencer() -> None:
        while appending.is_set():
            chain_all_pending(db)

    def chaining_writer() -> None:
        for index in range(10):
            with unsequenced.session() as session:
                log.record(session, actor="operator", action="revoke", subject=f"cli/{index}", outcome="success",
                           details={})  # fmt: skip

    appending.set()
    appenders = [threading.Thread(target=guarded(appender(n))) for n in range(3)]
    others = [threading.Thread(target=guarded(work)) for work in (sequencer, sequencer, chaining_writer)]
    try:
        for thread in appenders + others:
            thread.start()
        for thread in appenders:
            thread.join(timeout=120)
        appending.clear()
        for thread in others:
            thread.join(timeout=120)
    finally:
        unsequenced.dispose()
    assert errors == []
    chain_all_pending(db)
    subjects = _chained_subjects(db)
    assert len(subjects) == len(set(subjects)) == 100  # 90 appended, 10 chained by the writer, none twice
    _verified(db)
