"""Fixtures for the validator tests: loopback addresses, a guard on outgoing connections, a fake clock, and
one BIND 9 server with the signed test DNS tree for the whole session (``named``; see bind9.py).

The guard wraps ``socket.socket.connect`` for every test here: it records each connection attempt and fails
the test on any destination outside 127.0.0.0/8 and ::1 (this machine may only talk to itself), or on a host
name (which would mean the validator let the operating system resolve a name).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from bind9 import Named, running_named
from validation_fakes import LoopbackPool

from candor.clock import FakeClock

_POOL = LoopbackPool()


@pytest.fixture
def loopback() -> LoopbackPool:
    """``loopback.take()`` returns a fresh 127.0.0.x whose ports 80 and 443 are free."""
    return _POOL


@pytest.fixture(scope="session")
def named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Named]:
    """BIND 9 serving the signed test tree (its trust anchor is ``named.trust_anchors``)."""
    with running_named(tmp_path_factory.mktemp("named")) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every (address, port) a test connected to, in order; non-loopback destinations fail the test."""
    attempts: list[tuple[str, int]] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(address: Any) -> None:
        host, port = str(address[0]), int(address[1])
        attempts.append((host, port))
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise AssertionError(f"connect() was given the host name {host!r}, not an address") from None
        if not ip.is_loopback:
            raise AssertionError(f"connect() to non-loopback {host}:{port} attempted")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return attempts
