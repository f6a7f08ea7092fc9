"""Test doubles for the clock watch, as :class:`candor.clock.FakeClock` is for the clock: a time source the test
drives, and a monotonic clock that only moves when told to.

A typical test (the TSA's timeNotAvailable, the signer's refusal)::

    time = FakeTime()
    source = FakeTimeSource(time.clock)
    watch = ClockMonitor([source], WatchRules(), clock=time.clock, monotonic=time.monotonic)
    watch.poll()                 # trusted
    source.offset = 2.5          # the system clock is 2.5 s ahead of the reference
    time.advance(16); watch.poll()  # untrusted: clock.untrusted
"""

from __future__ import annotations

import threading
from datetime import timedelta

from candor.clock import Clock, FakeClock
from candor.timekeeping.sources import Sample


class FakeMonotonic:
    """A monotonic clock (seconds) that moves only when told to. Thread-safe."""

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a monotonic clock never goes back")
        with self._lock:
            self._now += seconds


class FakeTime:
    """The system clock and the monotonic clock together: ``advance`` lets time pass (both move), ``step`` makes
    the system clock jump (only it moves, as when someone sets the date)."""

    def __init__(self, clock: FakeClock | None = None, monotonic: FakeMonotonic | None = None) -> None:
        self.clock = clock or FakeClock()
        self.monotonic = monotonic or FakeMonotonic()

    def advance(self, seconds: float) -> None:
        self.monotonic.advance(seconds)
        self.clock.advance(timedelta(seconds=seconds))

    def step(self, seconds: float) -> None:
        self.clock.advance(timedelta(seconds=seconds))


class FakeTimeSource:
    """A time source whose every answer the test sets: ``offset`` (the system clock minus the reference),
    ``reachable``, ``synchronised``, and an ``adjustment`` reported once by the next sample."""

    def __init__(self, clock: Clock, *, offset: float = 0.0, name: str = "fake") -> None:
        self.name = name
        self.offset = offset
        self.reachable = True
        self.synchronised = True
        self.adjustment: float | None = None
        self.samples_taken = 0
        self._clock = clock

    def sample(self) -> Sample:
        self.samples_taken += 1
        if not self.reachable:
            return Sample(source=self.name, error="unreachable")
        if not self.synchronised:
            return Sample(source=self.name, leap="unsynchronised")
        adjustment, self.adjustment = self.adjustment, None
        return Sample(
            source=self.name,
            synchronised=True,
            offset_seconds=self.offset,
            last_sync=self._clock.now(),
            adjustment_seconds=adjustment,
        )


__all__ = ["FakeMonotonic", "FakeTime", "FakeTimeSource"]
