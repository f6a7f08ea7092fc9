"""The validators' watchdog: one thread per process shuts each connection down when its own deadline passes,
whatever the order the deadlines were set in, leaves closed connections alone, and works again in a forked
child (whose parent's thread did not come along)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from candor.validation._net import WATCHDOG_SLACK_SECONDS, Connection, Deadline


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as resources:
        yield resources


def _watched(stack: ExitStack, budget: float) -> tuple[Connection, socket.socket]:
    """A connection with *budget* seconds, and the peer's end of it."""
    ours, peer = socket.socketpair()
    stack.callback(peer.close)
    connection = Connection(ours, Deadline(budget))
    stack.callback(connection.close)
    return connection, peer


def _shut_down(connection: Connection) -> bool:
    """Whether the watchdog has shut *connection* down (a read then ends at once, without waiting)."""
    connection.sock.settimeout(0.0)
    try:
        return connection.sock.recv(1) == b""
    except BlockingIOError:  # open, nothing to read
        return False


def _wait_until_shut(connection: Connection, within: float) -> float:
    started = time.monotonic()
    while not _shut_down(connection):
        assert time.monotonic() - started < within, "the watchdog did not shut the connection down"
        time.sleep(0.01)
    return time.monotonic() - started


def test_each_connection_is_shut_down_at_its_own_deadline_in_any_order(stack: ExitStack) -> None:
    late, _ = _watched(stack, 30.0)
    soon, _ = _watched(stack, 0.3)  # earlier than the one the thread is waiting for: it must wake for this one
    sooner, _ = _watched(stack, 0.1)
    took = _wait_until_shut(sooner, within=2.0)
    assert took >= 0.05
    _wait_until_shut(soon, within=2.0)
    assert not _shut_down(late)


def test_a_connection_is_not_shut_down_before_its_deadline(stack: ExitStack) -> None:
    connection, peer = _watched(stack, 0.5)
    time.sleep(0.3)
    assert not _shut_down(connection)
    peer.sendall(b"x")
    connection.sock.settimeout(1.0)
    assert connection.sock.recv(1) == b"x"  # still usable
    assert _wait_until_shut(connection, within=1.0 + WATCHDOG_SLACK_SECONDS) <= 0.6


def test_a_closed_connection_is_left_alone(stack: ExitStack) -> None:
    connection, _ = _watched(stack, 0.1)
    descriptor = connection.sock.fileno()
    connection.close()
    # a socket that reuses the descriptor number must not be shut down by the old connection's deadline
    first, second = socket.socketpair()
    stack.callback(first.close)
    stack.callback(second.close)
    # the kernel hands out the lowest free descriptor: one of the pair now has the closed connection's number
    assert descriptor in (first.fileno(), second.fileno())
    reused, other = (first, second) if first.fileno() == descriptor else (second, first)
    time.sleep(0.3)  # past the closed connection's deadline
    other.sendall(b"y")
    reused.settimeout(1.0)
    assert reused.recv(1) == b"y"  # not shut down by the old deadline
    assert _wait_until_shut(_watched(stack, 0.05)[0], within=2.0) < 2.0  # and the watchdog still works


def test_the_watchdog_works_in_a_forked_child(stack: ExitStack) -> None:
    _watched(stack, 30.0)  # the parent's thread is running, and waiting
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            ours, peer = socket.socketpair()
            connection = Connection(ours, Deadline(0.1))
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                if _shut_down(connection):
                    code = 0
                    break
                time.sleep(0.01)
            peer.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
