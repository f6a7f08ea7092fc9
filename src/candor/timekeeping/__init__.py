"""Clock integrity: is the clock Candor signs with trustworthy right now?

CSBR 6.8 (time-stamping) and WS-08e (issuance): the time a signer puts into a token or a certificate comes
from :mod:`candor.clock`; this package watches that clock against its time sources (chrony's tracking data,
NTP servers) and says whether it may be used. Signers ask :meth:`ClockWatch.status` before every signature and
refuse when it is not trustworthy (fail closed). ``status`` is cheap: a watch refreshes its verdict in the
background, never on the signing path.
"""

from __future__ import annotations

from candor.timekeeping.chrony import ChronySource
from candor.timekeeping.fake import FakeMonotonic, FakeTime, FakeTimeSource
from candor.timekeeping.monitor import ClockEvent, ClockMonitor, Verdict, WatchRules, current_status
from candor.timekeeping.shared import VERDICT_FILE, VerdictFollower
from candor.timekeeping.sntp import NtpSource
from candor.timekeeping.sources import Sample, SystemSource, TimeSource
from candor.timekeeping.status import SUSPENDED, ClockStatus, ClockWatch, TrustedClock, require_trustworthy

__all__ = [
    "SUSPENDED",
    "VERDICT_FILE",
    "ChronySource",
    "ClockEvent",
    "ClockMonitor",
    "ClockStatus",
    "ClockWatch",
    "FakeMonotonic",
    "FakeTime",
    "FakeTimeSource",
    "NtpSource",
    "Sample",
    "SystemSource",
    "TimeSource",
    "TrustedClock",
    "Verdict",
    "VerdictFollower",
    "WatchRules",
    "current_status",
    "require_trustworthy",
]
