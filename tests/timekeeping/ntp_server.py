"""A small NTP server on loopback for the tests (the public internet is unreachable here): it answers mode-3
requests with the host's time plus ``offset``, and can be told to misbehave in each way the SNTP client must
refuse. chronyd accepts it as a source too (tests/timekeeping/test_chrony.py)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

from candor.timekeeping.sntp import PACKET, to_ntp


@dataclass
class Behaviour:
    offset: float = 0.0  # seconds added to the host's time
    leap: int = 0
    version: int = 4
    mode: int = 4
    stratum: int = 1
    reference_id: bytes = b"GPS\0"
    kiss: str = ""  # a kiss code: answer with stratum 0 and this code
    origin: str = "echo"  # "echo" the request's transmit timestamp, or "wrong"
    stray_first: bool = False  # send a reply with a wrong origin timestamp first, then the real one
    short: bool = False  # answer with a 40-byte datagram
    root_dispersion: float = 0.0001
    zero_transmit: bool = False
    silent: bool = False
    hold_seconds: float = 0.0  # wait this long between receiving and answering (T2 to T3)


class NtpServer:
    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.requests = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-ntp-server", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        port: int = self._sock.getsockname()[1]
        return port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> NtpServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            received = time.time() + self.behaviour.offset
            self.requests += 1
            if len(data) < PACKET.size or self.behaviour.silent:
                continue
            origin = PACKET.unpack_from(data)[10]
            if self.behaviour.stray_first:
                self._sock.sendto(self._reply(origin ^ 0xFFFF, received), peer)
            if self.behaviour.hold_seconds:
                time.sleep(self.behaviour.hold_seconds)
            self._sock.sendto(self._reply(origin, received), peer)

    def _reply(self, origin: int, received: float) -> bytes:
        b = self.behaviour
        stratum, reference_id = (0, b.kiss.encode("ascii").ljust(4, b"\0")) if b.kiss else (b.stratum, b.reference_id)
        transmit = 0 if b.zero_transmit else to_ntp(time.time() + b.offset)
        packet = PACKET.pack(
            (b.leap << 6) | (b.version << 3) | b.mode,
            stratum,
            4,
            -20,
            0,
            int(b.root_dispersion * 2**16),
            reference_id,
            to_ntp(received - 8),
            origin if b.origin == "echo" else origin ^ 1,
            to_ntp(received),
            transmit,
        )
        return packet[:40] if b.short else packet


def free_udp_port() -> int:
    """A loopback UDP port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


__all__ = ["Behaviour", "NtpServer", "free_udp_port"]
