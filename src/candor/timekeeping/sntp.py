"""A small SNTP client (RFC 4330; packet format and on-wire arithmetic of RFC 5905) for the NTP servers an
operator names in ``[clock] ntp_servers``.

Why not ntplib: it neither checks that a reply answers the request it sent (origin timestamp) nor refuses
kiss-o'-death or unsynchronised servers, and those checks are what this client is for; the rest is one
48-byte packet.

One query: a mode-3 request whose transmit timestamp is 64 random bits (as chrony sends, draft-ietf-ntp-data-
minimization), sent on a connected UDP socket (the kernel drops datagrams from any other address). A reply is
used only if its origin timestamp echoes those bits (RFC 4330 5, RFC 5905 8: anything else is discarded and the
client keeps waiting), it is a server reply (mode 4) of version 3 or 4, not a kiss-o'-death (stratum 0),
synchronised (leap indicator not 3, stratum below 16, a reference timestamp), with receive and transmit
timestamps, a root distance (root delay / 2 + root dispersion) within MAXDIST (1.5 s, RFC 5905 11.2.1) and a
round trip short enough to bound the offset's error (delay / 2) below half a second.

With T1 (request sent) and T4 (reply received) from the system clock and T2, T3 from the server (RFC 5905 8):
offset theta = ((T2 - T1) + (T3 - T4)) / 2 (server minus system), delay = (T4 - T1) - (T3 - T2). T4 is T1 plus
the monotonic time elapsed, so a step of the system clock during the query cannot distort it.
"""

from __future__ import annotations

import secrets
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from candor.clock import Clock
from candor.timekeeping.sources import Sample

NTP_PORT = 123
NTP_UNIX_DELTA = 2_208_988_800  # seconds from 1900-01-01 (NTP era 0) to 1970-01-01
PACKET = struct.Struct("!BBbbII4sQQQQ")  # LI/VN/mode, stratum, poll, precision, root delay, root dispersion,
# reference ID, then the reference, origin, receive and transmit timestamps (RFC 5905 7.3)
MAX_ROOT_DISTANCE = 1.5  # seconds, RFC 5905 MAXDIST
MAX_DELAY = 1.0  # seconds: the offset is known to +/- delay / 2
_LEAP = ("normal", "insert", "delete", "unsynchronised")
_RATE_HOLD_OFF = (64.0, 1024.0)  # first hold-off after a RATE kiss, and its ceiling (doubling in between)


class NtpError(Exception):
    """The server cannot be used now; the message says why, in one line. ``kiss`` is the kiss code of a
    kiss-o'-death reply (RFC 5905 7.4), empty otherwise."""

    def __init__(self, message: str, *, kiss: str = "") -> None:
        super().__init__(message)
        self.kiss = kiss


class _Discard(Exception):
    """A datagram that is no answer to this request: ignored, and the client keeps waiting."""


@dataclass(frozen=True)
class NtpReply:
    offset: float  # system clock minus the server's clock
    delay: float
    stratum: int
    leap: str
    received_at: float  # T4, Unix seconds on the system clock


def parse_server(server: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address; ValueError when it is none of them."""
    host, port = server.strip(), NTP_PORT
    if host.startswith("["):
        inside, _, rest = host[1:].partition("]")
        host = inside
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ValueError(f"{server!r}: expected [address]:port")
            port = int(rest[1:])
    elif host.count(":") == 1:
        host, _, digits = host.partition(":")
        if not digits.isdigit():
            raise ValueError(f"{server!r}: the port must be a number")
        port = int(digits)
    if not host or not 1 <= port <= 65535:
        raise ValueError(f"{server!r}: expected host, host:port or [address]:port")
    return host, port


def to_ntp(unix_seconds: float) -> int:
    """A 64-bit NTP timestamp (era folded into 32 bits of seconds)."""
    ntp = unix_seconds + NTP_UNIX_DELTA
    seconds = int(ntp)
    return ((seconds % 2**32) << 32) | int((ntp - seconds) * 2**32)


def from_ntp(value: int, *, pivot: float) -> float:
    """Unix seconds of an NTP timestamp, in the era that puts it nearest *pivot* (RFC 5905 6)."""
    pivot_seconds = int(pivot) + NTP_UNIX_DELTA
    difference = ((value >> 32) - pivot_seconds) % 2**32
    if difference >= 2**31:
        difference -= 2**32
    return pivot_seconds + difference - NTP_UNIX_DELTA + (value & 0xFFFFFFFF) / 2**32


def request(nonce: int) -> bytes:
    return PACKET.pack((0 << 6) | (4 << 3) | 3, 0, 0, 0, 0, 0, b"\0\0\0\0", 0, 0, 0, nonce)


def interpret(data: bytes, *, nonce: int, t1: float, t4: float) -> NtpReply:
    """The offset and delay of a reply to the request carrying *nonce*; NtpError if the server cannot be used,
    _Discard if *data* is no reply to it."""
    if len(data) < PACKET.size:
        raise _Discard(f"a {len(data)}-byte datagram, shorter than an NTP header")
    first, stratum, _poll, _precision, root_delay, root_dispersion, refid, reference, origin, receive, transmit = (
        PACKET.unpack_from(data)
    )
    if origin != nonce:
        raise _Discard("a reply whose origin timestamp is not this request's transmit timestamp")
    leap, version, mode = first >> 6, (first >> 3) & 7, first & 7
    if mode != 4:
        raise NtpError(f"mode {mode} reply, not a server reply (4)")
    if version not in (3, 4):
        raise NtpError(f"NTP version {version} reply")
    if stratum == 0:
        code = refid.rstrip(b"\0").decode("ascii", "replace")
        raise NtpError(f"kiss-o'-death {code}", kiss=code)
    if leap == 3 or stratum >= 16 or reference == 0:
        raise NtpError(f"the server is not synchronised (leap indicator {leap}, stratum {stratum})")
    if receive == 0 or transmit == 0:
        raise NtpError("a reply without receive or transmit timestamp")
    distance = root_delay / 2**16 / 2 + root_dispersion / 2**16
    if distance > MAX_ROOT_DISTANCE:
        raise NtpError(f"root distance {distance:.3f} s exceeds {MAX_ROOT_DISTANCE} s")
    t2, t3 = from_ntp(receive, pivot=t1), from_ntp(transmit, pivot=t1)
    delay = (t4 - t1) - (t3 - t2)
    if delay > MAX_DELAY:
        raise NtpError(f"round trip {delay:.3f} s: the offset would be uncertain by more than {MAX_DELAY / 2} s")
    theta = ((t2 - t1) + (t3 - t4)) / 2
    return NtpReply(offset=-theta, delay=max(delay, 0.0), stratum=stratum, leap=_LEAP[leap], received_at=t4)


def query(
    host: str, port: int, *, timeout: float, clock: Clock, monotonic: Callable[[], float] = time.monotonic
) -> NtpReply:
    """One SNTP exchange with *host*; NtpError when no usable reply came within *timeout* seconds."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise NtpError(f"cannot resolve {host}: {exc}") from None
    nonce = secrets.randbits(64) | 1  # never 0: a zero origin timestamp is what a bogus reply carries
    with socket.socket(family, kind, proto) as sock:
        try:
            sock.connect(address)
            t1, m1 = clock.now().timestamp(), monotonic()
            sock.send(request(nonce))
        except OSError as exc:
            raise NtpError(f"cannot send to {host}: {exc.strerror or exc}") from None
        problem = f"no reply within {timeout:g} s"
        while (remaining := m1 + timeout - monotonic()) > 0:
            sock.settimeout(remaining)
            try:
                data = sock.recv(512)
            except TimeoutError:
                break
            except ConnectionRefusedError:
                raise NtpError("nothing listens there (ICMP port unreachable)") from None
            except OSError as exc:
                raise NtpError(f"receive failed: {exc.strerror or exc}") from None
            try:
                return interpret(data, nonce=nonce, t1=t1, t4=t1 + (monotonic() - m1))
            except _Discard as exc:
                problem = f"{exc} (discarded), then no reply within {timeout:g} s"
        raise NtpError(problem)


class NtpSource:
    """One configured NTP server. It honours kiss-o'-death codes (RFC 5905 7.4): after DENY or RSTR it never
    asks that server again (until restart); after RATE it waits 64 s, doubling up to 1024 s, before the next
    query."""

    def __init__(
        self, server: str, *, timeout: float, clock: Clock, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.host, self.port = parse_server(server)
        self.name = f"ntp {server}"
        self._timeout, self._clock, self._monotonic = timeout, clock, monotonic
        self._refused = ""
        self._hold_until, self._hold_for = 0.0, 0.0

    def sample(self) -> Sample:
        if self._refused:
            return Sample(source=self.name, error=f"refused service ({self._refused}); not asked again")
        if self._monotonic() < self._hold_until:
            waiting = f"asked to slow down (kiss-o'-death RATE); waiting {self._hold_for:g} s"
            return Sample(source=self.name, error=waiting)
        try:
            reply = query(self.host, self.port, timeout=self._timeout, clock=self._clock, monotonic=self._monotonic)
        except NtpError as exc:
            if exc.kiss in ("DENY", "RSTR"):
                self._refused = str(exc)
            elif exc.kiss == "RATE":
                self._hold_for = min(max(self._hold_for * 2, _RATE_HOLD_OFF[0]), _RATE_HOLD_OFF[1])
                self._hold_until = self._monotonic() + self._hold_for
            return Sample(source=self.name, error=str(exc))
        self._hold_for = 0.0
        return Sample(
            source=self.name,
            synchronised=True,
            offset_seconds=reply.offset,
            last_sync=datetime.fromtimestamp(reply.received_at, UTC),
            delay_seconds=reply.delay,
            stratum=reply.stratum,
            leap=reply.leap,
        )


__all__ = ["NTP_PORT", "NtpError", "NtpReply", "NtpSource", "from_ntp", "interpret", "parse_server", "query", "to_ntp"]
