"""Token serial numbers: unique across serving processes and restarts, without a database round trip.

RFC 3161 2.4.2: serialNumber is a positive integer of up to 160 bits, unique for each token of a TSA. Each
serving process draws a random 79-bit prefix from the CSPRNG when it starts (again after a fork) and counts
up from it: serial = prefix * 2**48 + counter, 127 bits with the top one set (16 octets of DER contents, none
with a leading zero). Two processes collide only if their prefixes do (at most a 2**-78 chance for a pair),
and the database refuses a repeated serial anyway (``tsa_tokens.serial_hex`` is UNIQUE), so a token whose
serial was ever used is never returned. A prefix whose counter runs out is replaced by a new one.
"""

from __future__ import annotations

import itertools
import os
import secrets
import threading

PREFIX_BITS = 79
COUNTER_BITS = 48
SERIAL_BITS = PREFIX_BITS + COUNTER_BITS  # 127, well under RFC 3161's 160


class SerialAllocator:
    """Thread-safe: ``next()`` from many threads never returns a serial twice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reseed()

    def _reseed(self) -> None:
        self._pid = os.getpid()
        self._base = (secrets.randbits(PREFIX_BITS) | 1 << (PREFIX_BITS - 1)) << COUNTER_BITS
        self._count = itertools.count(1)  # next() on itertools.count is atomic under the GIL

    def next(self) -> int:
        value = next(self._count)
        base = self._base
        if value >= 1 << COUNTER_BITS or self._pid != os.getpid():
            with self._lock:
                if self._base == base:  # the first thread here replaces the prefix; the others take the new one
                    self._reseed()
            return self.next()
        return base | value
