"""Appending without the chain's lock, then chaining: concurrent appenders (threads and processes) on both
backends, the sequencer, and tampering before and after an event is chained."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from candor.audit import AuditLog, verify_chain
from candor.audit.sequencer import AuditSequencer, chain_all_pending
from candor.clock import FakeClock, SystemClock
from candor.errors import CandorError, ErrorKind
from candor.storage import AuditEvent, Database
from candor.storage.models import AuditPending

START = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)


def _append(db: Database, log: AuditLog, count: int, actor: str) -> None:
    for index in range(count):
        with db.session() as session:
            assert log.record(
                session, actor=actor, action="order.create", subject=f"account {index}", outcome="success",
                details={"index": index, "names": [f"n{index}.example"]},
            ) is None  # fmt: skip


def _counts(db: Database) -> tuple[int, int]:
    with db.session() as session:
        chained = session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
        pending = session.execute(select(func.count()).select_from(AuditPending)).scalar_one()
    return chained, pending


@pytest.fixture
def sequenced(db: Database) -> Database:
    db.audit_sequenced = True
    return db


def test_a_sequenced_session_leaves_its_event_pending(sequenced: Database) -> None:
    _append(sequenced, AuditLog(FakeClock(START)), 3, "acme:a")
    assert _counts(sequenced) == (0, 3)
    assert chain_all_pending(sequenced) == 3
    assert _counts(sequenced) == (3, 0)
    with sequenced.session() as session:
        report = verify_chain(session, chain_pending_first=False)
    assert report.ok and report.events_checked == 3 and report.pending == 0


def test_a_pending_event_rolls_back_with_its_transaction(sequenced: Database) -> None:
    log = AuditLog(FakeClock(START))

    def record_then_fail() -> None:
        with sequenced.session() as session:
            log.record(session, actor="a", action="b", subject="c", outcome="info", details={})
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        record_then_fail()
    assert _counts(sequenced) == (0, 0)


@pytest.mark.slow
def test_concurrent_threads_append_then_one_chain_verifies(sequenced: Database) -> None:
    log = AuditLog(SystemClock())
    errors: list[BaseException] = []
    start = threading.Barrier(5)

    def writer(number: int) -> None:
        try:
            start.wait()
            _append(sequenced, log, 25, f"writer:{number}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    def sequencer() -> None:  # chaining while the writers append, as candor serve's sequencer does
        try:
            start.wait()
            for _ in range(20):
                chain_all_pending(sequenced)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)] + [threading.Thread(target=sequencer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    chain_all_pending(sequenced)
    assert _counts(sequenced) == (100, 0)
    with sequenced.session() as session:
        report = verify_chain(session)
        actors = session.scalars(select(AuditEvent.actor)).all()
    assert report.ok, report.problem
    assert report.events_checked == report.head_seq == 100
    assert sorted(set(actors)) == [f"writer:{n}" for n in range(4)]


def _process_writer(url: str, number: int) -> None:
    db = Database(url)
    db.audit_sequenced = True
    try:
        _append(db, AuditLog(SystemClock()), 15, f"process:{number}")
    finally:
        db.dispose()


def _process_sequencer(url: str) -> None:
    db = Database(url)
    try:
        for _ in range(10):
            chain_all_pending(db)
    finally:
        db.dispose()


@pytest.mark.slow
def test_concurrent_processes_append_then_one_chain_verifies(database_url: str, sequenced: Database) -> None:
    sequenced.dispose()  # no pooled connection crosses the fork
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_process_writer, args=(database_url, n)) for n in range(3)]
    processes.append(context.Process(target=_process_sequencer, args=(database_url,)))
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0, 0, 0, 0]
    chain_all_pending(sequenced)
    with sequenced.session() as session:
        report = verify_chain(session)
    assert report.ok, report.problem
    assert report.events_checked == 45 and report.pending == 0


def test_a_modified_chained_event_fails_verify(sequenced: Database) -> None:
    _append(sequenced, AuditLog(FakeClock(START)), 6, "acme:a")
    chain_all_pending(sequenced)
    with sequenced.engine.begin() as connection:
        connection.execute(update(AuditEvent).where(AuditEvent.seq == 4).values(subject="account 99"))
    with sequenced.session() as session:
        report = verify_chain(session)
    assert not report.ok
    assert report.broken_seq == 4
    assert report.problem == "event 4: stored hash does not match its contents"


def test_a_modified_pending_event_is_not_chained(sequenced: Database) -> None:
    _append(sequenced, AuditLog(FakeClock(START)), 4, "acme:a")
    with sequenced.session() as session:
        third = session.scalars(select(AuditPending.id).order_by(AuditPending.id)).all()[2]
    with sequenced.engine.begin() as connection:
        connection.execute(update(AuditPending).where(AuditPending.id == third).values(outcome="failure"))
    with pytest.raises(CandorError) as caught:
        chain_all_pending(sequenced)
    assert caught.value.kind is ErrorKind.INTEGRITY
    assert f"pending audit event {third}" in caught.value.message
    assert _counts(sequenced) == (2, 2)  # chained up to the changed one, which stops the chain
    with sequenced.session() as session:
        report = verify_chain(session)
    assert not report.ok and report.pending == 2
    assert report.problem is not None and "changed before it was chained" in report.problem


def test_verify_chains_pending_events_first(sequenced: Database) -> None:
    _append(sequenced, AuditLog(FakeClock(START)), 5, "acme:a")
    with sequenced.session() as session:
        unchained = verify_chain(session, chain_pending_first=False)
    assert unchained.ok and (unchained.events_checked, unchained.pending) == (0, 5)
    with sequenced.session() as session:
        report = verify_chain(session)
    assert report.ok and (report.events_checked, report.pending) == (5, 0)


def test_an_unsequenced_writer_chains_what_is_pending_before_its_own_event(sequenced: Database) -> None:
    clock = FakeClock(START)
    _append(sequenced, AuditLog(clock), 3, "acme:a")
    sequenced.audit_sequenced = False  # a CLI command beside the server
    clock.advance(timedelta(seconds=1))
    with sequenced.session() as session:
        event = AuditLog(clock).record(session, actor="operator", action="revoke", subject="s", outcome="success",
                                       details={})  # fmt: skip
    assert event is not None and event.seq == 4
    assert _counts(sequenced) == (4, 0)
    with sequenced.session() as session:
        assert verify_chain(session).ok


def test_the_sequencer_chains_while_running_and_when_stopped(sequenced: Database) -> None:
    log = AuditLog(FakeClock(START))

    async def scenario() -> None:
        task = asyncio.create_task(AuditSequencer(sequenced, interval=0.01)())
        await asyncio.to_thread(_append, sequenced, log, 5, "acme:a")
        for _ in range(500):
            if _counts(sequenced) == (5, 0):
                break
            await asyncio.sleep(0.01)
        assert _counts(sequenced) == (5, 0)
        await asyncio.to_thread(_append, sequenced, log, 2, "acme:b")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert _counts(sequenced) == (7, 0)
    with sequenced.session() as session:
        assert verify_chain(session).ok
