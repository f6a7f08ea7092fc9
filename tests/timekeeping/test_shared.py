"""The primary worker's verdict reaches the other workers through a file, and a reader trusts nothing it
cannot date: a stale verdict, one from before a reboot, or one a step of the clock has overtaken."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from candor.timekeeping import ClockMonitor, FakeTime, FakeTimeSource, VerdictFollower, WatchRules
from candor.timekeeping.shared import decode, encode, publisher, read_verdict

RULES = WatchRules(stale_after=60)


def primary(time: FakeTime, path: Path, source: FakeTimeSource) -> ClockMonitor:
    return ClockMonitor([source], RULES, clock=time.clock, monotonic=time.monotonic, on_verdict=publisher(path))


def follower(time: FakeTime, path: Path) -> VerdictFollower:
    return VerdictFollower(path, RULES, clock=time.clock, monotonic=time.monotonic, start=False)


def test_another_worker_sees_each_verdict_and_distrusts_it_once_stale(tmp_path: Path) -> None:
    time, path = FakeTime(), tmp_path / "clock-verdict.json"
    source = FakeTimeSource(time.clock, offset=0.25)
    monitor, other = primary(time, path, source), follower(time, path)
    assert other.status().reason == "the clock watch has no verdict yet"

    monitor.poll()
    other.refresh()
    status = other.status()
    assert status.trustworthy and status.offset_seconds == pytest.approx(0.25)
    assert read_verdict(path) == monitor.verdict

    source.offset = 4.0
    time.advance(16)
    monitor.poll()
    other.refresh()
    assert not other.status().trustworthy
    assert "+4.000 s off" in other.status().reason

    source.offset = 0.0
    time.advance(16)
    monitor.poll()
    time.advance(61)  # the primary stopped polling: its verdict is no longer evidence
    other.refresh()
    assert other.status().reason == "the clock watch's last verdict is 61 s old (limit 60 s)"


def test_a_step_after_the_verdict_is_distrusted_by_the_reader_at_once(tmp_path: Path) -> None:
    time, path = FakeTime(), tmp_path / "v.json"
    primary(time, path, FakeTimeSource(time.clock)).poll()
    other = follower(time, path)
    time.step(-2.0)
    assert "moved -2.000 s" in other.status().reason


def test_a_verdict_from_before_a_reboot_is_no_verdict(tmp_path: Path) -> None:
    time, path = FakeTime(), tmp_path / "v.json"
    primary(time, path, FakeTimeSource(time.clock)).poll()
    document = json.loads(path.read_bytes())
    document["boot_id"] = "another boot"
    assert decode(json.dumps(document).encode()) is None


def test_an_unreadable_file_keeps_the_last_verdict_which_then_goes_stale(tmp_path: Path) -> None:
    time, path = FakeTime(), tmp_path / "v.json"
    primary(time, path, FakeTimeSource(time.clock)).poll()
    other = follower(time, path)
    path.write_text("{not json")
    other.refresh()
    assert other.status().trustworthy
    time.advance(61)
    assert not other.status().trustworthy
    with pytest.raises(ValueError, match="not a clock verdict"):
        read_verdict(path)
    document = json.loads(encode(primary(time, tmp_path / "w.json", FakeTimeSource(time.clock)).poll()))
    document["offset_seconds"] = "0.1"
    with pytest.raises(ValueError, match="is not a number"):
        decode(json.dumps(document).encode())


def test_the_follower_thread_rereads_the_file_until_closed(tmp_path: Path) -> None:
    time, path = FakeTime(), tmp_path / "v.json"
    source = FakeTimeSource(time.clock, offset=3.0)
    monitor = primary(time, path, source)
    monitor.poll()
    other = VerdictFollower(path, RULES, clock=time.clock, monotonic=time.monotonic, interval=0.01)
    try:
        assert not other.status().trustworthy
        source.offset = 0.0
        monitor.poll()
        for _ in range(500):
            if other.status().trustworthy:
                break
            threading.Event().wait(0.01)
        assert other.status().trustworthy
    finally:
        other.close()
