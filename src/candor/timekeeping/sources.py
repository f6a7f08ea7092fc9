"""Time sources: what each says about the system clock at one moment (a :class:`Sample`).

A source is queried from the watch's own thread, never on a signing path: ``sample()`` may block for as long as
the source's timeout, and never raises (a source that cannot be read answers with ``error`` set; the watch
counts that as no synchronisation). Chrony's tracking data is :mod:`.chrony`, NTP servers :mod:`.sntp`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from candor.clock import Clock


@dataclass(frozen=True)
class Sample:
    """One reading of a source. ``offset_seconds`` is the system clock minus the source's reference time
    (positive: the system clock is ahead), as :class:`candor.timekeeping.ClockStatus` has it."""

    source: str
    synchronised: bool = False  # the source vouches for the offset below (it follows a UTC(k) reference)
    offset_seconds: float | None = None
    last_sync: datetime | None = None  # when the source last confirmed its reference (UTC)
    delay_seconds: float | None = None  # round trip to an NTP server
    stratum: int | None = None
    leap: str = ""  # "normal", "insert", "delete" or "unsynchronised"
    adjustment_seconds: float | None = None  # a correction the source applied since its previous sample
    error: str = ""  # why the source could not be read; empty when it answered

    @property
    def available(self) -> bool:
        return not self.error

    def describe(self) -> str:
        """One line for the operator (``candor clock status``, audit details)."""
        if self.error:
            return f"{self.source}: unavailable: {self.error}"
        if not self.synchronised:
            return f"{self.source}: not synchronised"
        parts = [f"offset {self.offset_seconds:+.6f} s"]
        if self.delay_seconds is not None:
            parts.append(f"delay {self.delay_seconds:.6f} s")
        if self.stratum is not None:
            parts.append(f"stratum {self.stratum}")
        if self.leap and self.leap != "normal":
            parts.append(f"leap {self.leap}")
        if self.last_sync is not None:
            parts.append(f"last sync {self.last_sync.isoformat(timespec='seconds')}")
        return f"{self.source}: synchronised, {', '.join(parts)}"


class TimeSource(Protocol):
    name: str

    def sample(self) -> Sample:
        """Read the source now (bounded by its timeout); never raises."""
        ...


class SystemSource:
    """The operator's declaration that this host's clock is right as it is (``[clock] sources = ["system"]``):
    for local test PKIs only. It measures nothing, so it vouches for an offset of zero at every poll; steps of
    the system clock are still detected and audited by the watch."""

    name = "system"

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def sample(self) -> Sample:
        return Sample(source=self.name, synchronised=True, offset_seconds=0.0, last_sync=self._clock.now())


__all__ = ["Sample", "SystemSource", "TimeSource"]
