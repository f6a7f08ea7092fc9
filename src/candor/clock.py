"""The injected clock.

Domain code never calls ``datetime.now()``: it is handed a :class:`Clock`. Every time it returns is
timezone-aware UTC. Tests use :class:`FakeClock` to stand exactly on the dates the Baseline Requirements
change on.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The operating system's clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def ensure_utc(moment: datetime) -> datetime:
    """Return *moment* in UTC; a naive datetime is a programming error, not an assumption to make."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: Candor only handles timezone-aware UTC times")
    return moment.astimezone(UTC)


class FakeClock:
    """A clock that only moves when told to. Thread-safe."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = ensure_utc(start) if start is not None else datetime(2026, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = ensure_utc(moment)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now = self._now + delta
            return self._now
