"""The SNTP client against a real UDP NTP server on loopback: the offset and delay it measures, and every
reply it must refuse (RFC 4330 5, RFC 5905 7.4 and 8)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from ntp_server import NtpServer, free_udp_port

from candor.clock import SystemClock
from candor.timekeeping import NtpSource
from candor.timekeeping.sntp import NTP_UNIX_DELTA, NtpError, from_ntp, parse_server, query, to_ntp

TIMEOUT = 1.0


@pytest.fixture
def server() -> Iterator[NtpServer]:
    with NtpServer() as running:
        yield running


def ask(server: NtpServer) -> float:
    return query("127.0.0.1", server.port, timeout=TIMEOUT, clock=SystemClock()).offset


def refusal(server: NtpServer) -> str:
    with pytest.raises(NtpError) as refused:
        ask(server)
    return str(refused.value)


def test_the_offset_is_the_system_clock_minus_the_server_and_the_delay_is_measured(server: NtpServer) -> None:
    server.behaviour.offset = 3.0  # the server is 3 s ahead: the system clock is 3 s slow
    source = NtpSource(server.address, timeout=TIMEOUT, clock=SystemClock())
    sample = source.sample()
    assert sample.synchronised and sample.error == ""
    assert sample.offset_seconds == pytest.approx(-3.0, abs=0.05)
    assert sample.delay_seconds is not None and 0 <= sample.delay_seconds < 0.05
    assert sample.stratum == 1 and sample.leap == "normal"
    assert sample.last_sync is not None and abs((datetime.now(UTC) - sample.last_sync).total_seconds()) < 1
    assert sample.source == f"ntp {server.address}"


def test_time_the_server_spends_before_answering_is_not_counted_as_offset(server: NtpServer) -> None:
    server.behaviour.hold_seconds = 0.3  # T3 - T2 = 0.3 s, removed from the round trip
    reply = query("127.0.0.1", server.port, timeout=TIMEOUT, clock=SystemClock())
    assert reply.offset == pytest.approx(0.0, abs=0.05)
    assert reply.delay < 0.05


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kiss": "RATE"}, "kiss-o'-death RATE"),
        ({"leap": 3}, "not synchronised (leap indicator 3"),
        ({"stratum": 16}, "not synchronised (leap indicator 0, stratum 16)"),
        ({"mode": 3}, "mode 3 reply"),
        ({"mode": 5}, "mode 5 reply"),
        ({"version": 2}, "NTP version 2"),
        ({"zero_transmit": True}, "without receive or transmit timestamp"),
        ({"root_dispersion": 2.0}, "root distance 2.000 s exceeds 1.5 s"),
    ],
)
def test_a_reply_the_client_must_not_use_is_refused(server: NtpServer, change: dict[str, object], message: str) -> None:
    for name, value in change.items():
        setattr(server.behaviour, name, value)
    assert message in refusal(server)


def test_a_reply_to_another_request_is_discarded_and_the_client_keeps_waiting(server: NtpServer) -> None:
    server.behaviour.origin = "wrong"
    started = time.monotonic()
    message = refusal(server)
    assert "origin timestamp" in message and "no reply within" in message
    assert time.monotonic() - started >= TIMEOUT * 0.9  # it waited for the genuine reply


def test_a_forged_reply_arriving_first_does_not_hide_the_genuine_one(server: NtpServer) -> None:
    server.behaviour.stray_first = True
    server.behaviour.offset = -2.0
    assert ask(server) == pytest.approx(2.0, abs=0.05)


def test_a_datagram_shorter_than_a_header_is_discarded(server: NtpServer) -> None:
    server.behaviour.short = True
    assert "shorter than an NTP header" in refusal(server)


def test_a_silent_server_times_out(server: NtpServer) -> None:
    server.behaviour.silent = True
    started = time.monotonic()
    assert refusal(server) == f"no reply within {TIMEOUT:g} s"
    assert TIMEOUT * 0.9 <= time.monotonic() - started < TIMEOUT + 1


def test_nothing_listening_is_reported_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(NtpError, match="nothing listens there"):
        query("127.0.0.1", free_udp_port(), timeout=5.0, clock=SystemClock())
    assert time.monotonic() - started < 2


def test_deny_stops_every_later_query_and_rate_holds_off(server: NtpServer) -> None:
    source = NtpSource(server.address, timeout=TIMEOUT, clock=SystemClock())
    server.behaviour.kiss = "RATE"
    assert source.sample().error == "kiss-o'-death RATE"
    asked = server.requests
    held = source.sample()
    assert "asked to slow down" in held.error and "64 s" in held.error
    assert server.requests == asked  # not asked during the hold-off

    server.behaviour.kiss = "DENY"
    denying = NtpSource(server.address, timeout=TIMEOUT, clock=SystemClock())
    assert denying.sample().error == "kiss-o'-death DENY"
    server.behaviour.kiss = ""
    asked = server.requests
    assert "not asked again" in denying.sample().error
    assert server.requests == asked


def test_an_unresolvable_name_is_an_unavailable_source() -> None:
    sample = NtpSource("no-such-host.invalid", timeout=TIMEOUT, clock=SystemClock()).sample()
    assert not sample.available and "cannot resolve" in sample.error


def test_timestamps_convert_both_ways_and_across_the_2036_era_boundary() -> None:
    now = 1_795_761_083.5
    assert from_ntp(to_ntp(now), pivot=now) == pytest.approx(now, abs=1e-6)
    after_rollover = 2**32 - NTP_UNIX_DELTA + 10.25  # 2036-02-07, era 1: 32-bit seconds wrap to 10
    assert to_ntp(after_rollover) >> 32 == 10
    assert from_ntp(to_ntp(after_rollover), pivot=after_rollover - 5) == pytest.approx(after_rollover, abs=1e-6)
    assert from_ntp(to_ntp(after_rollover - 20), pivot=after_rollover) == pytest.approx(after_rollover - 20, abs=1e-6)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ntp.example.net", ("ntp.example.net", 123)),
        ("192.0.2.1:1123", ("192.0.2.1", 1123)),
        ("[2001:db8::1]:123", ("2001:db8::1", 123)),
        ("2001:db8::1", ("2001:db8::1", 123)),
        ("[2001:db8::1]", ("2001:db8::1", 123)),
    ],
)
def test_server_names(text: str, expected: tuple[str, int]) -> None:
    assert parse_server(text) == expected


@pytest.mark.parametrize("text", ["", "host:", "host:abc", "host:0", "[::1]x", "host:70000"])
def test_bad_server_names(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected|port"):
        parse_server(text)
