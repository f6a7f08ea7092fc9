"""The verdict and the interface every signer asks before signing (re-exported by :mod:`candor.timekeeping`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from candor.errors import CandorError, ErrorKind

log = logging.getLogger(__name__)
# What a refused caller is told: no offsets or source names (the reason is in the log and the audit log).
SUSPENDED = "signing is suspended while the CA's clock is not verified (see 'candor clock status'); retry later"


@dataclass(frozen=True)
class ClockStatus:
    """The latest verdict on the clock."""

    trustworthy: bool
    reason: str = ""  # one line saying why not, empty when trustworthy
    offset_seconds: float | None = None  # the system clock minus the reference, when measured
    last_sync: datetime | None = None  # the last time a source confirmed the clock (UTC)


@runtime_checkable
class ClockWatch(Protocol):
    def status(self) -> ClockStatus:
        """The current verdict; never blocks on a time source."""
        ...


class TrustedClock:
    """A watch that always trusts the clock: for tests of other roles, and for a data directory whose
    operator explicitly declares the host's clock trusted (never a silent default)."""

    def __init__(self, reason: str = "") -> None:
        self._status = ClockStatus(trustworthy=True, reason=reason)

    def status(self) -> ClockStatus:
        return self._status


def require_trustworthy(watch: ClockWatch, what: str) -> ClockStatus:
    """Fail closed (WS-08e, CSBR 6.8): the verdict if the clock may be signed with, else ``ErrorKind.UNAVAILABLE``
    (retrying later may help) with a message that says nothing about the clock's sources or offset."""
    status = watch.status()
    if not status.trustworthy:
        log.warning("not signing %s: the clock is not trustworthy: %s", what, status.reason)
        raise CandorError(ErrorKind.UNAVAILABLE, SUSPENDED)
    return status


__all__ = ["SUSPENDED", "ClockStatus", "ClockWatch", "TrustedClock", "require_trustworthy"]
