"""chronyd's view of the system clock, from ``chronyc -c tracking``.

The CSV line has 14 fields (chrony 4.x, ``chronyc(1)`` "tracking"): reference ID (hex), reference name,
stratum, reference time (Unix seconds: chronyd's last clock update), system time, last offset, RMS offset,
frequency, residual frequency, skew, root delay, root dispersion, update interval, leap status.

Signs, checked against chronyc's text output (tests/timekeeping/data/chronyc-tracking/): "System time" is the
correction chronyd is applying, positive when the system clock is *slow* of NTP time, so the offset (system
minus reference) is its negation; "Last offset" is the offset measured at the last update, positive when the
system clock was *ahead*. A last offset of 1 s or more on a new update is a clock adjustment that CSBR 6.8
makes auditable.

Not synchronised: leap status "Not synchronised", a reference time of 0, or reference ID 7F7F0101 (chronyd's
``local`` directive: it serves its own clock, which is no UTC(k) source).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from candor.timekeeping.sources import Sample

LOCAL_REFERENCE_ID = "7F7F0101"
_LEAP = {"normal": "normal", "insert second": "insert", "delete second": "delete", "not synchronised": "unsynchronised"}
_FIELDS = 14


def parse_tracking(line: str, *, source: str = "chrony") -> Sample:
    """A :class:`Sample` from one ``chronyc -c tracking`` line; a line that is not one is an unavailable source."""
    fields = line.strip().split(",")
    if len(fields) != _FIELDS:
        printed = line.strip()[:80]
        return Sample(source=source, error=f"chronyc printed {len(fields)} fields, not {_FIELDS}: {printed!r}")
    reference_id, _name, stratum, ref_time, system_time, last_offset = fields[:6]
    leap_text = fields[13].strip().lower()
    try:
        ref_seconds = float(ref_time)
        correction = float(system_time)
        last = float(last_offset)
        strata = int(stratum)
    except ValueError:
        return Sample(source=source, error=f"chronyc printed a field that is not a number: {line.strip()[:80]!r}")
    leap = _LEAP.get(leap_text)
    if leap is None:
        return Sample(source=source, error=f"chronyc printed an unknown leap status {fields[13]!r}")
    last_sync = datetime.fromtimestamp(ref_seconds, UTC) if ref_seconds > 0 else None
    synchronised = leap != "unsynchronised" and last_sync is not None and reference_id.upper() != LOCAL_REFERENCE_ID
    return Sample(
        source=source,
        synchronised=synchronised,
        offset_seconds=-correction if synchronised else None,
        last_sync=last_sync,
        stratum=strata,
        leap=leap if reference_id.upper() != LOCAL_REFERENCE_ID else "unsynchronised",
        adjustment_seconds=last if synchronised else None,
    )


class ChronySource:
    """Runs ``chronyc -c tracking`` (with the configured command and options) at each sample. The last offset is
    reported as an adjustment only when chronyd has updated the clock since the previous sample (not at the first
    one: that update happened before the watch started)."""

    name = "chrony"

    def __init__(self, command: Sequence[str] = ("chronyc",), *, timeout: float = 5.0) -> None:
        self._command = [*command, "-c", "tracking"]
        self._timeout = timeout
        self._previous_update: datetime | None = None

    def sample(self) -> Sample:
        try:
            done = subprocess.run(self._command, capture_output=True, text=True, timeout=self._timeout, check=False)
        except FileNotFoundError:
            return Sample(source=self.name, error=f"{self._command[0]} is not installed")
        except subprocess.TimeoutExpired:
            return Sample(source=self.name, error=f"chronyc did not answer within {self._timeout:g} s")
        except OSError as exc:
            return Sample(source=self.name, error=f"chronyc cannot run: {exc.strerror}")
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()
            return Sample(source=self.name, error=f"chronyc failed: {said[-1] if said else f'exit {done.returncode}'}")
        lines = done.stdout.strip().splitlines()
        sample = parse_tracking(lines[-1] if lines else "", source=self.name)
        previous, self._previous_update = self._previous_update, sample.last_sync
        if previous is None or sample.last_sync == previous:
            sample = replace(sample, adjustment_seconds=None)
        return sample


__all__ = ["LOCAL_REFERENCE_ID", "ChronySource", "parse_tracking"]
