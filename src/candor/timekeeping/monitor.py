"""The clock watch: polls the time sources on a schedule, keeps the verdict, and records each change of it.

Rules (CSBR 6.8, WS-08e, TSA-03), applied at every poll:

- offset: the median offset of the sources that vouch for one (``Sample.synchronised``); while none does, the
  last measured offset plus any step of the system clock since. ``|offset| > max_offset`` (default 1 s) makes the
  clock untrustworthy (``clock.untrusted``); back within the bound, trustworthy again (``clock.trusted``).
- synchronisation: a source that cannot be read, or is not synchronised, is no synchronisation. When the last
  one is older than ``max_sync_age`` (default 24 h, CSBR 6.8's "at least every 24 hours") the clock is not
  trustworthy (``clock.unsynchronised``). Until some source has vouched for the clock since the watch started,
  it is not trustworthy either.
- steps: the system clock measured against the monotonic clock between two polls; a difference of ``step``
  (1 s) or more is a step, and a source's own report of an adjustment that large (chrony's last offset) is one
  too: ``clock.step`` (CSBR 6.8: "clock adjustments of one second or more are auditable events").

Each change of verdict is one event (the first verdict of a watch too), never one per poll. ``status()`` is
cheap and never blocks: it re-reads nothing, it applies :func:`current_status` to the last verdict, which also
distrusts a verdict that has grown stale (the polling thread stopped) or a clock that has stepped since.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from candor.clock import Clock
from candor.timekeeping.sources import Sample, TimeSource
from candor.timekeeping.status import ClockStatus

log = logging.getLogger(__name__)
TRUSTED, OFFSET, UNSYNCHRONISED, NO_SYNC = "trusted", "offset", "unsynchronised", "no-sync"
_ACTIONS = {TRUSTED: "clock.trusted", OFFSET: "clock.untrusted", UNSYNCHRONISED: "clock.unsynchronised",
            NO_SYNC: "clock.untrusted"}  # fmt: skip
MAX_UNSENT = 1000  # events kept for a later attempt while the audit log cannot be written


@dataclass(frozen=True)
class WatchRules:
    max_offset: float = 1.0  # seconds, either way
    step: float = 1.0  # seconds: a step or adjustment this large is audited
    max_sync_age: float = 86_400.0  # seconds since the last successful synchronisation
    stale_after: float = 60.0  # seconds: an older verdict is itself not trusted


@dataclass(frozen=True)
class ClockEvent:
    action: str  # clock.trusted, clock.untrusted, clock.unsynchronised, clock.step, clock.source.*
    outcome: str  # success, failure or info (the audit log's outcomes)
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """What a poll concluded, and when (by the system and the monotonic clocks), so that a reader can tell how
    old it is and whether the system clock has moved since."""

    state: str  # TRUSTED, OFFSET, UNSYNCHRONISED or NO_SYNC
    reason: str
    offset_seconds: float | None
    sync_age_seconds: float | None  # at the time of the verdict
    last_sync: datetime | None
    wall: datetime
    mono: float

    @property
    def trustworthy(self) -> bool:
        return self.state == TRUSTED


def current_status(verdict: Verdict | None, rules: WatchRules, *, wall: datetime, mono: float) -> ClockStatus:
    """The verdict as it stands now: distrusted when stale, or when the clock has since stepped out of bound."""
    if verdict is None:
        return ClockStatus(trustworthy=False, reason="the clock watch has no verdict yet")
    age = mono - verdict.mono
    if not 0 <= age <= rules.stale_after:
        reason = f"the clock watch's last verdict is {age:.0f} s old (limit {rules.stale_after:g} s)"
        return ClockStatus(trustworthy=False, reason=reason, last_sync=verdict.last_sync)
    if not verdict.trustworthy:
        return ClockStatus(False, verdict.reason, verdict.offset_seconds, verdict.last_sync)
    moved = (wall - verdict.wall).total_seconds() - age
    offset = (verdict.offset_seconds or 0.0) + moved
    if abs(offset) > rules.max_offset:
        reason = f"the system clock moved {moved:+.3f} s since it was checked (offset {offset:+.3f} s)"
        return ClockStatus(False, reason, offset, verdict.last_sync)
    if (verdict.sync_age_seconds or 0.0) + age > rules.max_sync_age:
        reason = f"no successful synchronisation for {rules.max_sync_age / 3600:g} h"
        return ClockStatus(False, reason, offset, verdict.last_sync)
    return ClockStatus(trustworthy=True, offset_seconds=offset, last_sync=verdict.last_sync)


class ClockMonitor:
    """A :class:`candor.timekeeping.ClockWatch` that polls *sources*. ``poll()`` blocks for as long as the
    sources take; ``run(stop)`` polls every *interval* seconds until *stop* is set. *on_event* records events
    (an audit log); an event it fails to record is tried again at the next poll. *on_verdict* publishes each
    verdict (to the other worker processes)."""

    def __init__(
        self,
        sources: Sequence[TimeSource],
        rules: WatchRules,
        *,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
        interval: float = 16.0,
        on_event: Callable[[ClockEvent], None] | None = None,
        on_verdict: Callable[[Verdict], None] | None = None,
    ) -> None:
        if not sources:
            raise ValueError("a clock watch needs at least one time source")
        self.sources, self.rules, self.interval = tuple(sources), rules, interval
        self._clock, self._monotonic = clock, monotonic
        self._on_event, self._on_verdict = on_event, on_verdict
        self._verdict: Verdict | None = None  # replaced whole, so readers need no lock
        self._previous: tuple[datetime, float] | None = None  # (wall, mono) at the previous poll
        self._measured: tuple[float, datetime, float] | None = None  # (offset, wall, mono) last measured
        self._synced: tuple[datetime, float] | None = None  # (wall, mono) of the last synchronisation
        self._available: dict[str, bool] = {}
        self._unsent: list[ClockEvent] = []
        self._polling = threading.Lock()
        self.samples: tuple[Sample, ...] = ()  # the last poll's, for display

    @property
    def verdict(self) -> Verdict | None:
        return self._verdict

    def status(self) -> ClockStatus:
        return current_status(self._verdict, self.rules, wall=self._clock.now(), mono=self._monotonic())

    def run(self, stop: threading.Event) -> None:
        while True:
            try:
                self.poll()
            except Exception:  # the verdict goes stale, and so untrusted, if this keeps failing
                log.exception("clock: this poll failed")
            if stop.wait(self.interval):
                return

    def poll(self) -> Verdict:
        with self._polling:
            samples = tuple(self._read(source) for source in self.sources)
            wall, mono = self._clock.now(), self._monotonic()
            events = self._steps(samples, wall, mono)
            events += self._availability(samples)
            self._measure(samples, wall, mono)
            verdict = self._decide(samples, wall, mono)
            previous = self._verdict
            if previous is None or previous.state != verdict.state:
                events.append(self._transition(verdict, previous, samples))
            self._verdict, self._previous, self.samples = verdict, (wall, mono), samples
            self._send(events)
            if self._on_verdict is not None:
                try:
                    self._on_verdict(verdict)
                except Exception:
                    log.exception("clock: publishing the verdict failed")
            return verdict

    # -- one poll ---------------------------------------------------------------------------------------
    def _read(self, source: TimeSource) -> Sample:
        try:
            return source.sample()
        except Exception as exc:  # a source must not stop the watch; it counts as no synchronisation
            log.exception("clock: source %s failed", source.name)
            return Sample(source=source.name, error=f"failed: {type(exc).__name__}")

    def _steps(self, samples: Sequence[Sample], wall: datetime, mono: float) -> list[ClockEvent]:
        if self._previous is not None:
            jump = (wall - self._previous[0]).total_seconds() - (mono - self._previous[1])
            if abs(jump) >= self.rules.step:
                details = {"seconds": round(jump, 6), "kind": "step", "since": self._previous[0].isoformat(),
                           "detected_by": "the system clock against the monotonic clock"}  # fmt: skip
                return [ClockEvent("clock.step", "info", details)]
        for sample in samples:
            if sample.adjustment_seconds is not None and abs(sample.adjustment_seconds) >= self.rules.step:
                details = {"seconds": round(sample.adjustment_seconds, 6), "kind": "adjustment",
                           "detected_by": sample.source}  # fmt: skip
                return [ClockEvent("clock.step", "info", details)]
        return []

    def _availability(self, samples: Sequence[Sample]) -> list[ClockEvent]:
        """A source lost or back: one event per change (not at the first poll, whose verdict lists them all)."""
        events = []
        for sample in samples:
            was = self._available.get(sample.source)
            now = sample.available and sample.synchronised
            if was is not None and was != now:
                action, outcome = ("clock.source.restored", "success") if now else ("clock.source.lost", "failure")
                events.append(ClockEvent(action, outcome, {"source": sample.describe()}))
            self._available[sample.source] = now
        return events

    def _measure(self, samples: Sequence[Sample], wall: datetime, mono: float) -> None:
        vouching = [s for s in samples if s.synchronised and s.offset_seconds is not None]
        if not vouching:
            return
        self._measured = (statistics.median(s.offset_seconds or 0.0 for s in vouching), wall, mono)
        age = min(max(0.0, (wall - s.last_sync).total_seconds()) if s.last_sync else 0.0 for s in vouching)
        if self._synced is None or mono - age > self._synced[1]:
            self._synced = (wall - timedelta(seconds=age), mono - age)

    def _decide(self, samples: Sequence[Sample], wall: datetime, mono: float) -> Verdict:
        if self._measured is None or self._synced is None:
            reason = "no time source has confirmed the clock yet (" + "; ".join(s.describe() for s in samples) + ")"
            return Verdict(NO_SYNC, reason, None, None, None, wall, mono)
        measured, measured_wall, measured_mono = self._measured
        offset = measured + (wall - measured_wall).total_seconds() - (mono - measured_mono)
        sync_age = mono - self._synced[1]
        if sync_age > self.rules.max_sync_age:
            state = UNSYNCHRONISED
            reason = (f"no successful synchronisation for {sync_age / 3600:.1f} h "
                      f"(limit {self.rules.max_sync_age / 3600:g} h)")  # fmt: skip
        elif abs(offset) > self.rules.max_offset:
            state, reason = (
                OFFSET,
                f"the clock is {offset:+.3f} s off its time sources (bound {self.rules.max_offset:g} s)",
            )
        else:
            state, reason = TRUSTED, ""
        return Verdict(state, reason, offset, sync_age, self._synced[0], wall, mono)

    def _transition(self, verdict: Verdict, previous: Verdict | None, samples: Sequence[Sample]) -> ClockEvent:
        details: dict[str, object] = {
            "reason": verdict.reason,
            "previous": previous.state if previous is not None else "watch started",
            "offset_seconds": None if verdict.offset_seconds is None else round(verdict.offset_seconds, 6),
            "max_offset_seconds": self.rules.max_offset,
            "last_sync": verdict.last_sync.isoformat() if verdict.last_sync else None,
            "sources": [s.describe() for s in samples],
        }
        return ClockEvent(_ACTIONS[verdict.state], "success" if verdict.trustworthy else "failure", details)

    def _send(self, events: list[ClockEvent]) -> None:
        for event in events:
            level = logging.INFO if event.outcome == "success" else logging.WARNING
            log.log(level, "clock: %s %s", event.action, event.details.get("reason") or event.details)
        if self._on_event is None:
            return
        self._unsent = (self._unsent + events)[-MAX_UNSENT:]
        while self._unsent:
            try:
                self._on_event(self._unsent[0])
            except Exception:
                log.exception("clock: recording %s failed; trying again at the next poll", self._unsent[0].action)
                return
            self._unsent.pop(0)


__all__ = [
    "NO_SYNC",
    "OFFSET",
    "TRUSTED",
    "UNSYNCHRONISED",
    "ClockEvent",
    "ClockMonitor",
    "Verdict",
    "WatchRules",
    "current_status",
]
