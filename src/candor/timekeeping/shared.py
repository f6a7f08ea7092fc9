"""The verdict of the one process that polls (``candor serve``'s primary worker), for the processes that do not:
a small JSON file in the data directory, replaced atomically after every poll and re-read every second.

A reader trusts nothing it cannot date: the verdict carries the writer's monotonic time (CLOCK_MONOTONIC is
one clock for every process of a Linux host) and the kernel's boot ID, so a verdict from before a reboot, or
older than the watch's bound, or overtaken by a step of the system clock, is not trustworthy
(:func:`candor.timekeeping.monitor.current_status`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from candor.clock import Clock
from candor.files import write_atomically
from candor.timekeeping.monitor import Verdict, WatchRules, current_status
from candor.timekeeping.status import ClockStatus

log = logging.getLogger(__name__)
VERDICT_FILE = "clock-verdict.json"
FOLLOW_SECONDS = 1.0
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    try:
        return _BOOT_ID.read_text(encoding="ascii").strip()
    except OSError:  # not Linux: the monotonic clock is still the host's
        return ""


def encode(verdict: Verdict) -> bytes:
    document = {
        "state": verdict.state,
        "reason": verdict.reason,
        "offset_seconds": verdict.offset_seconds,
        "sync_age_seconds": verdict.sync_age_seconds,
        "last_sync": verdict.last_sync.isoformat() if verdict.last_sync else None,
        "wall": verdict.wall.isoformat(),
        "mono": verdict.mono,
        "boot_id": boot_id(),
    }
    return json.dumps(document, sort_keys=True).encode("utf-8")


def decode(data: bytes) -> Verdict | None:
    """The verdict in *data*, or None when it was written before this boot; ValueError when it is not one."""
    try:
        document = json.loads(data)
        if document["boot_id"] != boot_id():
            return None
        last_sync = document["last_sync"]
        return Verdict(
            state=str(document["state"]),
            reason=str(document["reason"]),
            offset_seconds=_number(document["offset_seconds"]),
            sync_age_seconds=_number(document["sync_age_seconds"]),
            last_sync=datetime.fromisoformat(last_sync) if last_sync else None,
            wall=datetime.fromisoformat(document["wall"]),
            mono=float(document["mono"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a clock verdict: {exc}") from None


def _number(value: object) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def publisher(path: Path) -> Callable[[Verdict], None]:
    """For ``ClockMonitor(on_verdict=...)``: replace the file at *path* with each verdict."""
    return lambda verdict: write_atomically(path, encode(verdict))


def read_verdict(path: Path) -> Verdict | None:
    try:
        return decode(path.read_bytes())
    except FileNotFoundError:
        return None


class VerdictFollower:
    """A :class:`candor.timekeeping.ClockWatch` reading the published verdict: once at construction, then every
    second in a daemon thread until :meth:`close`. ``status()`` reads memory only."""

    def __init__(
        self,
        path: Path,
        rules: WatchRules,
        *,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
        interval: float = FOLLOW_SECONDS,
        start: bool = True,
    ) -> None:
        self.path, self.rules = path, rules
        self._clock, self._monotonic = clock, monotonic
        self._verdict: Verdict | None = None
        self._failing = False
        self._stop = threading.Event()
        self.refresh()
        if start:
            threading.Thread(target=self._follow, args=(interval,), name="clock-follower", daemon=True).start()

    def refresh(self) -> None:
        try:
            self._verdict = read_verdict(self.path)
            self._failing = False
        except (OSError, ValueError) as exc:  # keep the last one: it goes stale, and so untrusted, on its own
            if not self._failing:
                log.warning("clock: cannot read %s: %s", self.path, exc)
            self._failing = True

    def status(self) -> ClockStatus:
        return current_status(self._verdict, self.rules, wall=self._clock.now(), mono=self._monotonic())

    def close(self) -> None:
        self._stop.set()

    def _follow(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.refresh()


__all__ = ["VERDICT_FILE", "VerdictFollower", "decode", "encode", "publisher", "read_verdict"]
