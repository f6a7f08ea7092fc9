"""Anti-replay nonces in memory shared by ``candor serve``'s workers on one host (RFC 8555 6.5).

A nonce is ``c || issued-at || MAC``: the 64-bit serial *c* of the nonce in this run, the second it was issued
(64 bits) and HMAC-SHA256 under a key of this run over both, truncated to 128 bits; base64url without padding,
43 characters. The MAC is what makes a nonce this server's: a made-up or altered one fails the MAC check (in
constant time) before anything shared is touched. The key is random and lives only in memory, so a restart
refuses every nonce of an earlier run, which a client answers by retrying with the fresh Replay-Nonce that
comes with the badNonce (RFC 8555 6.5, 7.2).

Use is a bit per serial in a ring of *window* bits, in a mapping the workers share (made before they fork, with
the counter of serials issued): issuing *c* clears bit ``c mod window``, redeeming it sets the bit, and a bit
already set is a replay. Once ``window`` more nonces have been issued the slot is another nonce's, so a serial
that far behind the counter is refused as used (2^22 by default: a nonce stays good for that many issues after
its own, about 4 minutes at 20,000 nonces a second, and for its lifetime below that rate).

The lock between workers is ``lockf`` on the mapping's file (a ``memfd``), behind a thread lock within a
process. The kernel drops a process's record locks when it dies, so a worker killed (SIGKILL, the OOM killer)
while holding the lock does not stop the others' nonces; a ``multiprocessing.Lock`` (a POSIX semaphore) would
stay taken for good. It costs 1.2-1.8 us more per exchange than the semaphore on this machine (2.4-3.0 against
1.2 us per acquire and release; docs/performance.md).

One host only: a multi-node deployment (PostgreSQL) keeps its nonces in the shared database
(:class:`candor.acme.nonces.NonceStore`).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hmac
import mmap
import os
import re
import secrets
import struct
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from candor.clock import Clock

WINDOW = 1 << 22  # bits in the ring of used flags (512 KiB)
MAC_BYTES = 16
_HEADER = struct.Struct(">QQ")  # serial, issued-at (seconds since the epoch)
_COUNTER = struct.Struct("=Q")  # at the start of the mapping: serials issued so far
_RING_OFFSET = _COUNTER.size
# 32 bytes in base64url without padding: 43 characters, the last with its two unused bits zero (one spelling each)
_FORM = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]")


class SharedNonces:
    """Nonces for this process and the processes it forks after making this store. Thread- and fork-safe."""

    blocking = False  # memory, a lock held for microseconds: usable on the event loop

    def __init__(self, clock: Clock, *, lifetime: timedelta = timedelta(hours=1), window: int = WINDOW) -> None:
        if window < 8 or window & (window - 1):
            raise ValueError("the nonce window is a power of two of at least 8 bits")
        self._clock = clock
        self._lifetime = lifetime.total_seconds()
        self._window = window
        self._key = secrets.token_bytes(32)
        self._fd = os.memfd_create("candor-acme-nonces", os.MFD_CLOEXEC)
        os.ftruncate(self._fd, _RING_OFFSET + window // 8)  # zeros: nothing issued
        self._map = mmap.mmap(self._fd, _RING_OFFSET + window // 8, mmap.MAP_SHARED)
        self._thread_lock = threading.Lock()
        reset = weakref.WeakMethod(self._after_fork)
        os.register_at_fork(after_in_child=lambda: (method := reset()) is not None and method())

    def issue(self) -> str:
        return self.exchange(None)[1]

    def redeem(self, value: str) -> bool:
        """True exactly once, in any process sharing this store, for a nonce it issued that has not expired."""
        return self._exchange(value, issue=False)[0]

    def exchange(self, value: str | None) -> tuple[bool, str]:
        """Redeem *value* (as :meth:`redeem`; None: nothing to redeem) and issue a fresh nonce, under one lock."""
        used, fresh = self._exchange(value, issue=True)
        assert fresh is not None
        return used, fresh

    def close(self) -> None:
        """Unmap the ring, once nothing in this process uses the store."""
        self._map.close()
        os.close(self._fd)

    # -- internals ------------------------------------------------------------------------------------------
    def _exchange(self, value: str | None, *, issue: bool) -> tuple[bool, str | None]:
        now = self._clock.now().timestamp()
        serial = self._valid(value, now) if value is not None else None
        mapping, window = self._map, self._window
        with self._locked():
            (counter,) = _COUNTER.unpack_from(mapping, 0)
            used = False
            if serial is not None and counter - window <= serial < counter:  # its slot is still its own
                index, bit = _RING_OFFSET + (serial % window) // 8, 1 << (serial % 8)
                flags = mapping[index]
                if not flags & bit:
                    mapping[index] = flags | bit
                    used = True
            if issue:
                _COUNTER.pack_into(mapping, 0, counter + 1)
                index, bit = _RING_OFFSET + (counter % window) // 8, 1 << (counter % 8)
                mapping[index] &= ~bit & 0xFF
        if not issue:
            return used, None
        body = _HEADER.pack(counter, int(now))
        mac = hmac.digest(self._key, body, "sha256")[:MAC_BYTES]
        return used, base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode("ascii")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The ring to this thread alone, among every thread of every process sharing it."""
        with self._thread_lock:
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def _valid(self, value: str, now: float) -> int | None:
        """The serial of *value* if it is a nonce of this store that has not expired (not whether it is used)."""
        if not _FORM.fullmatch(value):
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=")
        except (binascii.Error, ValueError):
            return None
        body, mac = raw[: _HEADER.size], raw[_HEADER.size :]
        if not hmac.compare_digest(mac, hmac.digest(self._key, body, "sha256")[:MAC_BYTES]):
            return None
        serial, issued_at = _HEADER.unpack(body)
        if now >= issued_at + self._lifetime:  # expired at exactly its lifetime
            return None
        return int(serial)

    def _after_fork(self) -> None:
        """A thread of the parent may have held the thread lock when it forked: the child's copy starts free (the
        record lock is the parent's own, never inherited)."""
        self._thread_lock = threading.Lock()
