"""Private network plumbing shared by the validators: the one place that opens a TCP connection.

Three rules live here so that no validator can forget them:

- Only ports 80 and 443 are ever contacted (BR 3.2.2.4.19/.20, RFC 8555 §8.3, RFC 8737 §3; WS-02e). This is
  deliberately stricter than the BR's Authorized Ports (80, 443, 25, 22): no HTTP or TLS method uses 25 or 22.
- Only an IP literal the address policy has just admitted is connected to, so there is no DNS lookup between
  the check and the connection (DNS rebinding).
- Every validation has one time budget. Socket timeouts bound each operation, and a watchdog shuts the
  socket down when the budget runs out, so a server that drips one byte at a time cannot hold a validator.
  One watchdog thread per process keeps every open connection's deadline (until 2026-11-27 each connection
  started a ``threading.Timer``: a thread started and ended per validation).
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from types import TracebackType

from candor.errors import CandorError
from candor.validation.addresses import AddressPolicy, IPAddress
from candor.validation.outcome import Contact, ProblemType

log = logging.getLogger(__name__)
ALLOWED_PORTS = frozenset({80, 443})  # WS-02e: the only ports any validator may contact
USER_AGENT = "candor-validation/1 (+RFC 8555)"


class Failure(Exception):
    """A validation failure: the RFC 8555 §6.7 problem type and the one-line detail for the subscriber."""

    def __init__(self, problem: ProblemType, detail: str) -> None:
        super().__init__(detail)
        self.problem: ProblemType = problem
        self.detail = detail


class Deadline:
    """The time budget of one validation, on the monotonic clock."""

    def __init__(self, budget: float) -> None:
        self._end = time.monotonic() + budget

    def expired(self) -> bool:
        return time.monotonic() >= self._end

    def remaining(self) -> float:
        """Seconds left; raises TimeoutError once the budget is spent."""
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError("validation time budget spent")
        return left


# How late the watchdog may shut a connection down: deadlines this close together are served by one wake-up.
WATCHDOG_SLACK_SECONDS = 0.02


class _Watchdog:
    """The deadlines of this process's open connections, and the one thread that shuts each connection down when
    its deadline passes. A closed connection's entry stays until its deadline (then it is dropped unread): closing
    is then a flag, not a search, and the thread wakes only when the earliest deadline is due."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # the thread, and its lock's state, are the parent's

    def _reset(self) -> None:
        self._wake = threading.Condition(threading.Lock())
        self._due: list[tuple[float, int, Connection]] = []  # (monotonic deadline, tie-breaker, connection)
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, connection: Connection, seconds: float) -> None:
        when = time.monotonic() + seconds
        with self._wake:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="validation-watchdog", daemon=True)
                self._thread.start()
            earlier = not self._due or when < self._due[0][0]
            heapq.heappush(self._due, (when, next(self._order), connection))
            if earlier:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                now = time.monotonic()
                expired = []
                while self._due and self._due[0][0] <= now:
                    expired.append(heapq.heappop(self._due)[2])
                if not expired:
                    wait = self._due[0][0] - now + WATCHDOG_SLACK_SECONDS if self._due else None
                    self._wake.wait(wait)
                    continue
            for connection in expired:
                try:
                    connection.expire()
                except Exception:  # never lose the thread that bounds every other connection
                    log.exception("the validation watchdog could not shut a connection down")


_watchdog = _Watchdog()


class Connection:
    """A connected socket, shut down by the process's watchdog when the deadline passes."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self._lock = threading.Lock()
        self._sock = sock
        self._closed = False
        _watchdog.watch(self, max(deadline.remaining(), 0.0))

    @property
    def sock(self) -> socket.socket:
        return self._sock

    def replace(self, sock: socket.socket) -> None:
        """Track the TLS socket that took over the connection (``wrap_socket`` detaches the plain one)."""
        with self._lock:
            self._sock = sock

    def expire(self) -> None:
        """The deadline passed: shut the connection down (unless it is closed already), which fails any read or
        write under way on it."""
        with self._lock:  # the lock keeps close() from freeing the descriptor while it is being shut down
            if not self._closed:
                with contextlib.suppress(OSError):  # the base-class call: a socket-level shutdown, TLS or not
                    socket.socket.shutdown(self._sock, socket.SHUT_RDWR)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def describe(exc: BaseException) -> str:
    """A short, safe description of a network error (no internal detail beyond its name)."""
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or type(exc).__name__})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"network error {errno.errorcode.get(exc.errno, str(exc.errno))}"
    return f"network error ({type(exc).__name__})"


def url_host(ip: IPAddress | str) -> str:
    """An address as it appears in a URL or Host header (RFC 3986 §3.2.2: IPv6 in brackets)."""
    text = str(ip)
    return f"[{text}]" if ":" in text else text


def _open(ip: IPAddress, port: int, timeout: float) -> socket.socket:
    if port not in ALLOWED_PORTS:  # a programming error: nothing may reach here with another port
        raise ValueError(f"validators only contact ports {sorted(ALLOWED_PORTS)}, not {port}")
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((str(ip), port))
    except BaseException:
        sock.close()
        raise
    return sock


def connect_first(
    addresses: Sequence[IPAddress],
    port: int,
    *,
    url: str,
    policy: AddressPolicy,
    deadline: Deadline,
    records: list[Contact],
) -> tuple[Connection, IPAddress] | None:
    """Connect to the first address that the policy admits and that accepts a connection, in order.

    Every address tried, and every address refused by the policy, is appended to *records*. Returns None
    when no address connected (the caller decides the problem type from the records).
    """
    for index, ip in enumerate(addresses):
        try:
            policy.check(ip)
        except CandorError as exc:
            records.append(Contact(url, str(ip), port, False, False, None, f"not contacted: {exc.message}"))
            continue
        if deadline.expired():
            records.append(Contact(url, str(ip), port, False, False, None, "not contacted: time budget spent"))
            continue
        share = deadline.remaining() / (len(addresses) - index)  # leave time for the addresses after this one
        try:
            sock = _open(ip, port, share)
        except OSError as exc:
            records.append(Contact(url, str(ip), port, True, False, None, describe(exc)))
            continue
        try:
            return Connection(sock, deadline), ip
        except TimeoutError:
            sock.close()
            records.append(Contact(url, str(ip), port, True, True, None, "timed out"))
            return None
    return None


def connect_failure(problem: ProblemType, records: Sequence[Contact], what: str, *, deadline: Deadline) -> Failure:
    """The failure for "no address connected": the last connection error, else why nothing was attempted.

    *problem* is the type to report when the address policy refused every address (nothing was attempted).
    """
    tried = [record for record in records if record.attempted]
    if deadline.expired() and not tried:
        return Failure("connection", f"{what}: the validation time budget was spent before connecting")
    if tried:
        last = tried[-1]
        return Failure("connection", f"{what}: could not connect to {url_host(last.ip)}:{last.port}: {last.outcome}")
    reason = records[-1].outcome if records else "no addresses"
    return Failure(problem, f"{what}: {reason}")


def insecure_tls_context(alpn: Sequence[str]) -> ssl.SSLContext:
    """A TLS client context that does not verify the server's certificate, offering exactly *alpn*.

    The key authorization is the proof of control, not the certificate: http-01 checks the body (RFC 8555
    §8.3), and RFC 8737 §4 says acme-tls/1 "does not use the authentication method described in [RFC5280]".
    TLS 1.2 is the minimum (RFC 8737 §4).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(list(alpn))
    return context


def one_line(text: str, limit: int = 500) -> str:
    """*text* as one printable line of at most *limit* characters, for a subscriber-facing detail."""
    flat = "".join(ch if ch.isprintable() else " " for ch in text)
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
