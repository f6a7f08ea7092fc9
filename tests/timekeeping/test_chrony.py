"""chronyd's tracking data as a time source: samples recorded from a real ``chronyc -c tracking`` (data/, see its
README), chronyc without a daemon, and a real chronyd following the test NTP server on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ntp_server import NtpServer, free_udp_port

from candor.clock import SystemClock
from candor.timekeeping import ChronySource, ClockMonitor, Sample, WatchRules
from candor.timekeeping.chrony import parse_tracking
from softhsm import unavailable

SAMPLES = Path(__file__).parent / "data" / "chronyc-tracking"


def recorded(name: str) -> Sample:
    return parse_tracking((SAMPLES / name).read_text())


def test_a_synchronised_chronyd_vouches_for_the_negated_system_time_field() -> None:
    sample = recorded("synchronised.csv")
    assert sample.synchronised and sample.available
    # "System time: 0.000019558 seconds slow of NTP time" (synchronised.txt): the clock is behind.
    assert sample.offset_seconds == pytest.approx(-0.000019558)
    assert sample.last_sync == datetime(2026, 11, 27, 6, 31, 23, 549557, tzinfo=UTC)
    assert sample.stratum == 2 and sample.leap == "normal"
    assert sample.adjustment_seconds == pytest.approx(-0.000000418)


def test_five_seconds_slow_is_an_offset_of_minus_five_and_distrusts_the_clock() -> None:
    sample = recorded("five-seconds-slow.csv")
    assert sample.offset_seconds == pytest.approx(-5.00001955)

    class Recorded:
        name = "chrony"

        def sample(self) -> Sample:
            return sample

    clock = SystemClock()
    monitor = ClockMonitor([Recorded()], WatchRules(max_sync_age=10**9), clock=clock)
    monitor.poll()
    assert not monitor.status().trustworthy
    assert "-5.000 s off its time sources" in monitor.status().reason


@pytest.mark.parametrize("name", ["not-synchronised.csv", "local-reference.csv"])
def test_chronyd_without_a_utc_source_vouches_for_nothing(name: str) -> None:
    sample = recorded(name)
    assert sample.available and not sample.synchronised
    assert sample.offset_seconds is None
    assert sample.leap == "unsynchronised"


def test_leap_statuses_and_the_never_updated_reference_time() -> None:
    line = (SAMPLES / "synchronised.csv").read_text().strip()
    assert parse_tracking(line.replace(",Normal", ",Insert second")).leap == "insert"
    assert parse_tracking(line.replace(",Normal", ",Delete second")).synchronised
    never = parse_tracking(line.replace("1795761083.549556852", "0.000000000"))
    assert not never.synchronised and never.last_sync is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "printed 1 fields, not 14"),
        ("506 Cannot talk to daemon", "printed 1 fields, not 14"),
        ("7F000001,x,2,abc,0,0,0,0,0,0,0,0,0,Normal", "not a number"),
        ("7F000001,x,2,1.0,0,0,0,0,0,0,0,0,0,Sideways", "unknown leap status 'Sideways'"),
    ],
)
def test_output_that_is_not_tracking_data_is_an_unavailable_source(line: str, message: str) -> None:
    sample = parse_tracking(line)
    assert not sample.available and message in sample.error


def test_a_missing_chronyc_is_an_unavailable_source() -> None:
    sample = ChronySource(["/nonexistent/chronyc"]).sample()
    assert not sample.available and sample.error == "/nonexistent/chronyc is not installed"


def _chronyc() -> str:
    path = shutil.which("chronyc")
    if path is None:
        unavailable("chronyc is not installed (Debian package chrony)")
    assert path is not None
    return path


def test_chronyc_without_a_daemon_is_an_unavailable_source() -> None:
    source = ChronySource([_chronyc(), "-h", "127.0.0.1", "-p", str(free_udp_port())], timeout=10)
    sample = source.sample()
    assert not sample.available
    assert sample.error == "chronyc failed: 506 Cannot talk to daemon"


@pytest.fixture
def chronyd(tmp_path: Path) -> Iterator[tuple[NtpServer, ChronySource]]:
    """A real chronyd that never touches the system clock (-x), following the test NTP server."""
    daemon = shutil.which("chronyd") or ("/usr/sbin/chronyd" if Path("/usr/sbin/chronyd").exists() else None)
    if daemon is None:
        unavailable("chronyd is not installed (Debian package chrony)")
    assert daemon is not None
    server = NtpServer()
    port = free_udp_port()
    config = tmp_path / "chrony.conf"
    config.write_text(
        f"server 127.0.0.1 port {server.port} iburst minpoll -4 maxpoll -4\n"
        f"cmdport {port}\nbindcmdaddress 127.0.0.1\ncmdallow 127.0.0.1\n"
        f"pidfile {tmp_path / 'chronyd.pid'}\n"
    )
    options = ["-x", "-d", "-f", str(config)] + ([] if os.geteuid() == 0 else ["-U"])
    log = (tmp_path / "chronyd.log").open("w")
    process = subprocess.Popen([daemon, *options], stdout=log, stderr=subprocess.STDOUT)
    try:
        yield server, ChronySource([_chronyc(), "-h", "127.0.0.1", "-p", str(port)], timeout=10)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        server.close()


def _until(source: ChronySource, condition: Callable[[Sample], bool], seconds: float = 45) -> Sample:
    deadline = time.monotonic() + seconds
    sample = source.sample()
    while not condition(sample) and time.monotonic() < deadline:
        time.sleep(0.5)
        sample = source.sample()
    return sample


@pytest.mark.slow
def test_a_real_chronyd_following_a_server_five_seconds_ahead_distrusts_the_clock(
    chronyd: tuple[NtpServer, ChronySource],
) -> None:
    server, source = chronyd
    synced = _until(source, lambda s: s.synchronised)
    if not synced.synchronised and "Cannot talk" in synced.error:
        unavailable(f"chronyd did not start here: {synced.error}")
    assert synced.synchronised, synced
    assert synced.offset_seconds is not None and abs(synced.offset_seconds) < 0.1
    monitor = ClockMonitor([source], WatchRules(), clock=SystemClock())
    assert monitor.poll().trustworthy

    server.behaviour.offset = 5.0
    ahead = _until(source, lambda s: s.offset_seconds is not None and s.offset_seconds < -4)
    assert ahead.offset_seconds == pytest.approx(-5.0, abs=0.1), ahead
    verdict = monitor.poll()
    assert not verdict.trustworthy and "-5.0" in verdict.reason

    server.behaviour.offset = 0.0
    back = _until(source, lambda s: s.offset_seconds is not None and abs(s.offset_seconds) < 0.1)
    assert back.offset_seconds == pytest.approx(0.0, abs=0.1), back
    assert monitor.poll().trustworthy
