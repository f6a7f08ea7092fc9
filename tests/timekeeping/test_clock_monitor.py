"""TSA-03 and WS-08e with a fake time source: the watch's verdict and the one event each change of it records."""

from __future__ import annotations

import threading

import pytest

from candor.timekeeping import ClockEvent, ClockMonitor, FakeTime, FakeTimeSource, WatchRules

HOUR = 3600.0
POLL = 16.0


class Events(list[ClockEvent]):
    def __call__(self, event: ClockEvent) -> None:
        self.append(event)

    def actions(self) -> list[str]:
        return [e.action for e in self]


def watch(*sources: FakeTimeSource, time: FakeTime, events: Events, **rules: float) -> ClockMonitor:
    return ClockMonitor(list(sources), WatchRules(**rules), clock=time.clock, monotonic=time.monotonic, on_event=events)


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


def poll_after(monitor: ClockMonitor, time: FakeTime, seconds: float = POLL) -> None:
    time.advance(seconds)
    monitor.poll()


def test_drift_beyond_the_bound_distrusts_the_clock_once_and_coming_back_trusts_it_once(time: FakeTime) -> None:
    source, events = FakeTimeSource(time.clock), Events()
    monitor = watch(source, time=time, events=events)
    monitor.poll()
    assert monitor.status().trustworthy
    assert events.actions() == ["clock.trusted"]
    assert events[0].details["previous"] == "watch started"

    source.offset = 1.0  # exactly on the bound: still within it
    poll_after(monitor, time)
    assert monitor.status().trustworthy
    source.offset = 1.2
    poll_after(monitor, time)
    status = monitor.status()
    assert not status.trustworthy
    assert status.offset_seconds == pytest.approx(1.2)
    assert "+1.200 s off its time sources (bound 1 s)" in status.reason
    for _ in range(5):  # still drifting: no further event
        poll_after(monitor, time)
    assert events.actions() == ["clock.trusted", "clock.untrusted"]
    untrusted = events[1]
    assert untrusted.outcome == "failure"
    assert untrusted.details["offset_seconds"] == pytest.approx(1.2)
    assert untrusted.details["previous"] == "trusted"
    described = "fake: synchronised, offset +1.200000 s, last sync 2026-01-01T00:00:32+00:00"
    assert untrusted.details["sources"] == [described]

    source.offset = -0.3
    poll_after(monitor, time)
    poll_after(monitor, time)
    assert monitor.status().trustworthy
    assert events.actions() == ["clock.trusted", "clock.untrusted", "clock.trusted"]
    assert events[2].outcome == "success" and events[2].details["previous"] == "offset"


def test_a_negative_drift_counts_the_same(time: FakeTime) -> None:
    source, events = FakeTimeSource(time.clock, offset=-1.5), Events()
    monitor = watch(source, time=time, events=events)
    monitor.poll()
    assert not monitor.status().trustworthy
    assert events.actions() == ["clock.untrusted"]
    assert events[0].details["previous"] == "watch started"


def test_a_step_of_the_system_clock_is_audited_and_distrusted_until_the_next_poll(time: FakeTime) -> None:
    source, events = FakeTimeSource(time.clock), Events()
    monitor = watch(source, time=time, events=events)
    monitor.poll()
    time.advance(5)
    time.step(3.0)  # someone set the date 3 s ahead
    status = monitor.status()  # before any poll: the watch sees the jump against the monotonic clock
    assert not status.trustworthy
    assert "moved +3.000 s since it was checked" in status.reason
    assert source.samples_taken == 1  # status() asked no source

    source.offset = 3.0  # and the source agrees
    poll_after(monitor, time)
    assert events.actions() == ["clock.trusted", "clock.step", "clock.untrusted"]
    step = events[1]
    assert step.outcome == "info" and step.details["kind"] == "step"
    assert step.details["seconds"] == pytest.approx(3.0)

    time.step(-3.0)  # stepped back: audited again, and trusted again once the source agrees
    source.offset = 0.0
    poll_after(monitor, time)
    assert events.actions() == ["clock.trusted", "clock.step", "clock.untrusted", "clock.step", "clock.trusted"]
    assert events[3].details["seconds"] == pytest.approx(-3.0)


def test_a_step_the_sources_show_was_a_correction_leaves_the_clock_trusted(time: FakeTime) -> None:
    source, events = FakeTimeSource(time.clock), Events()
    monitor = watch(source, time=time, events=events)
    monitor.poll()
    time.step(-1.0)  # chronyd stepped the clock back into line: the source sees no offset afterwards
    poll_after(monitor, time)
    assert monitor.status().trustworthy
    assert events.actions() == ["clock.trusted", "clock.step"]


def test_a_step_under_one_second_is_not_an_event(time: FakeTime) -> None:
    source, events = FakeTimeSource(time.clock), Events()
    monitor = watch(source, time=time, events=events)
    monitor.poll()
    time.step(0.9)
    source.offset = 0.9
    poll_after(monitor, time)
    assert events.actions() == ["clock.trusted"]
    assert monitor.status().trustworthy


def test_an_adjustment_of_a_second_reported_by_the_source_is_audited(time: FakeTime) -> None:
    source, events = FakeTimeSource(time.clock), Events()
    monitor = watch(source, time=time, events=events)
    monitor.poll()
    source.adjustment = -1.25
    poll_after(monitor, time)
    poll_after(monitor, time)
    assert events.actions() == ["clock.trusted", "clock.step"]
    assert events[1].details == {"seconds": -1.25, "kind": "adjustment", "detected_by": "fake"}


def test_no_sync_for_24_hours_stops_signing(time: FakeTime) -> None:
    source, events = FakeTimeSource(time.clock, offset=0.2), Events()
    monitor = watch(source, time=time, events=events)
    monitor.poll()
    source.reachable = False  # a source that cannot be reached is no synchronisation
    poll_after(monitor, time, 1)
    for _ in range(23):
        poll_after(monitor, time, HOUR)
    poll_after(monitor, time, HOUR - 2)  # 23 h 59 min 59 s: held over on the last measured offset
    assert monitor.status().trustworthy
    assert monitor.status().offset_seconds == pytest.approx(0.2)
    assert events.actions() == ["clock.trusted", "clock.source.lost"]

    poll_after(monitor, time, 2)
    status = monitor.status()
    assert not status.trustworthy
    assert status.reason.startswith("no successful synchronisation for 24.0 h (limit 24 h)")
    poll_after(monitor, time)
    assert events.actions() == ["clock.trusted", "clock.source.lost", "clock.unsynchronised"]
    assert events[2].outcome == "failure"

    source.reachable = True
    poll_after(monitor, time)
    assert monitor.status().trustworthy
    assert events.actions()[3:] == ["clock.source.restored", "clock.trusted"]


def test_an_unsynchronised_source_is_no_sync_either(time: FakeTime) -> None:
    source, events = FakeTimeSource(time.clock), Events()
    monitor = watch(source, time=time, events=events, max_sync_age=HOUR)
    monitor.poll()
    source.synchronised = False
    poll_after(monitor, time, HOUR + 1)
    assert not monitor.status().trustworthy
    assert events.actions() == ["clock.trusted", "clock.source.lost", "clock.unsynchronised"]


def test_the_clock_is_not_trusted_before_any_source_has_confirmed_it(time: FakeTime) -> None:
    source, events = FakeTimeSource(time.clock), Events()
    source.reachable = False
    monitor = watch(source, time=time, events=events)
    assert monitor.status().reason == "the clock watch has no verdict yet"
    monitor.poll()
    status = monitor.status()
    assert not status.trustworthy
    assert status.reason == "no time source has confirmed the clock yet (fake: unavailable: unreachable)"
    assert events.actions() == ["clock.untrusted"]
    source.reachable = True
    poll_after(monitor, time)
    assert events.actions() == ["clock.untrusted", "clock.source.restored", "clock.trusted"]


def test_a_verdict_nobody_refreshes_goes_stale(time: FakeTime) -> None:
    monitor = watch(FakeTimeSource(time.clock), time=time, events=Events(), stale_after=60)
    monitor.poll()
    time.advance(60)
    assert monitor.status().trustworthy
    time.advance(1)
    status = monitor.status()
    assert not status.trustworthy
    assert status.reason == "the clock watch's last verdict is 61 s old (limit 60 s)"


def test_the_median_source_decides_so_one_falseticker_cannot(time: FakeTime) -> None:
    good = [FakeTimeSource(time.clock, offset=0.1, name=f"good-{n}") for n in range(2)]
    bad = FakeTimeSource(time.clock, offset=30.0, name="bad")
    monitor = watch(*good, bad, time=time, events=Events())
    monitor.poll()
    assert monitor.status().trustworthy
    assert monitor.status().offset_seconds == pytest.approx(0.1)


def test_an_event_the_audit_log_refused_is_recorded_at_the_next_poll(time: FakeTime) -> None:
    recorded: list[str] = []
    failing = [True]

    def record(event: ClockEvent) -> None:
        if failing[0]:
            raise RuntimeError("database down")
        recorded.append(event.action)

    source = FakeTimeSource(time.clock, offset=2.0)
    monitor = ClockMonitor([source], WatchRules(), clock=time.clock, monotonic=time.monotonic, on_event=record)
    monitor.poll()
    assert recorded == []
    failing[0] = False
    source.offset = 0.0
    poll_after(monitor, time)
    assert recorded == ["clock.untrusted", "clock.trusted"]


def test_a_source_that_raises_counts_as_unavailable(time: FakeTime) -> None:
    class Broken:
        name = "broken"

        def sample(self) -> object:
            raise OSError("boom")

    monitor = ClockMonitor([Broken()], WatchRules(), clock=time.clock, monotonic=time.monotonic)  # type: ignore[list-item]
    monitor.poll()
    assert "broken: unavailable: failed: OSError" in monitor.status().reason


def test_run_polls_until_stopped(time: FakeTime) -> None:
    source = FakeTimeSource(time.clock)
    monitor = ClockMonitor([source], WatchRules(), clock=time.clock, monotonic=time.monotonic, interval=0.01)
    stop = threading.Event()
    thread = threading.Thread(target=monitor.run, args=(stop,))
    thread.start()
    try:
        for _ in range(500):
            if source.samples_taken >= 3:
                break
            threading.Event().wait(0.01)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert source.samples_taken >= 3
    assert monitor.status().trustworthy


def test_a_watch_needs_a_source(time: FakeTime) -> None:
    with pytest.raises(ValueError, match="at least one time source"):
        ClockMonitor([], WatchRules(), clock=time.clock)
