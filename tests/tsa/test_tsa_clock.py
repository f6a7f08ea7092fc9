"""Acceptance 4 for the TSA: with the clock watch's fake time source drifting beyond the bound, requests get
timeNotAvailable (and nothing is signed or recorded); back in bound, tokens again; each transition of the watch is
in the audit log. The watch is candor.timekeeping's ClockMonitor, as candor serve runs it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from tsa_support import Harness, post, read_reply, request, served

from candor.clock import FakeClock
from candor.storage.models import AuditEvent
from candor.storage.models_tsa import TsaToken
from candor.timekeeping import ClockMonitor, FakeTime, FakeTimeSource, WatchRules
from candor.timekeeping.audited import AuditedEvents


def test_drift_beyond_the_bound_refuses_tokens_until_the_clock_is_back_and_each_transition_is_audited(
    tsa: Harness,
) -> None:
    time = FakeTime(FakeClock(datetime.now(UTC)))
    source = FakeTimeSource(time.clock)
    watch = ClockMonitor(
        [source], WatchRules(max_offset=1.0), clock=time.clock, monotonic=time.monotonic,
        on_event=AuditedEvents(tsa.db, time.clock),
    )  # fmt: skip
    service = tsa.tsa.app.service
    service.watch, service.clock = watch, time.clock
    with tsa.db.session() as session:
        first_event = session.scalar(select(func.max(AuditEvent.seq))) or 0
        tokens = session.scalar(select(func.count()).select_from(TsaToken)) or 0
    watch.poll()
    with served(tsa) as url:
        assert read_reply(post(url, request())[2]).status == 0
        source.offset = 1.5  # the system clock is 1.5 s off its reference: over the 1 s bound
        time.advance(16)
        watch.poll()
        for _ in range(3):
            refused = read_reply(post(url, request())[2])
            assert (refused.status, refused.failures, refused.token) == (2, {"timeNotAvailable"}, None)
        source.offset = 0.2
        time.advance(16)
        watch.poll()
        assert read_reply(post(url, request())[2]).status == 0
    with tsa.db.session() as session:
        actions = list(
            session.scalars(select(AuditEvent.action).where(AuditEvent.seq > first_event).order_by(AuditEvent.seq))
        )
        issued = (session.scalar(select(func.count()).select_from(TsaToken)) or 0) - tokens
    assert [a for a in actions if a.startswith("clock.")] == ["clock.trusted", "clock.untrusted", "clock.trusted"]
    assert issued == 2  # the refused requests left no record
