"""The watch's events land in the hash-chained audit log, on SQLite and PostgreSQL (an event the database
refuses is kept and written at the next poll: tests/timekeeping/test_clock_monitor.py)."""

from __future__ import annotations

import json

from sqlalchemy import select

from candor.audit import verify_chain
from candor.storage import Database
from candor.storage.models import AuditEvent
from candor.timekeeping import ClockMonitor, FakeTime, FakeTimeSource, WatchRules
from candor.timekeeping.audited import SUBJECT, AuditedEvents


def test_each_change_of_verdict_is_one_chained_audit_event(db: Database) -> None:
    time = FakeTime()
    source = FakeTimeSource(time.clock)
    monitor = ClockMonitor(
        [source], WatchRules(), clock=time.clock, monotonic=time.monotonic, on_event=AuditedEvents(db, time.clock)
    )
    monitor.poll()
    source.offset = 1.5
    for _ in range(3):
        time.advance(16)
        monitor.poll()
    time.step(2.0)
    source.offset = 0.0
    time.advance(16)
    monitor.poll()
    with db.session() as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
        assert [(e.action, e.outcome) for e in events] == [
            ("clock.trusted", "success"),
            ("clock.untrusted", "failure"),
            ("clock.step", "info"),
            ("clock.trusted", "success"),
        ]
        assert {(e.actor, e.subject) for e in events} == {("clock-watch", SUBJECT)}
        assert json.loads(events[1].details)["offset_seconds"] == 1.5
        assert json.loads(events[2].details)["seconds"] == 2.0
        assert verify_chain(session).ok
