from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from candor.clock import Clock, FakeClock, SystemClock, ensure_utc


def test_system_clock_is_timezone_aware_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(datetime(2027, 3, 15, tzinfo=UTC) - timedelta(seconds=1))
    assert clock.now() == clock.now()
    assert clock.advance(timedelta(seconds=1)) == datetime(2027, 3, 15, tzinfo=UTC)
    assert isinstance(clock, Clock)


def test_fake_clock_normalises_other_zones_to_utc() -> None:
    clock = FakeClock(datetime(2026, 1, 1, 9, tzinfo=timezone(timedelta(hours=9))))
    assert clock.now() == datetime(2026, 1, 1, 0, tzinfo=UTC) and clock.now().tzinfo is UTC


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        ensure_utc(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        FakeClock().set(datetime(2026, 1, 1))
