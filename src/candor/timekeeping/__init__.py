"""Clock integrity: is the clock Candor signs with trustworthy right now?

CSBR 6.8 (time-stamping) and WS-08e (issuance): the time a signer puts into a token or a certificate comes
from :mod:`candor.clock`; this package watches that clock against its time sources (chrony's tracking data,
NTP servers) and says whether it may be used. Signers ask :meth:`ClockWatch.status` before every signature and
refuse when it is not trustworthy (fail closed). ``status`` is cheap: a watch refreshes its verdict in the
background, never on the signing path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


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


__all__ = ["ClockStatus", "ClockWatch", "TrustedClock"]
