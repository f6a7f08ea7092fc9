"""``[clock]`` settings: the time sources the clock watch compares the system clock with, and its bounds."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from candor.timekeeping.monitor import WatchRules
from candor.timekeeping.sntp import parse_server

SourceName = Literal["chrony", "ntp", "system"]


class ClockSettings(BaseModel):
    """Validated at start-up. No sources named means: this host's clock, for a private hierarchy only (the CLI
    refuses it, and "system", when any issuer is publicly trusted)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # "chrony": chronyd's tracking data (chronyc -c tracking); "ntp": the servers below, asked directly;
    # "system": the operator declares this host's clock right as it is (local test PKIs).
    sources: tuple[SourceName, ...] = ()
    ntp_servers: tuple[str, ...] = ()  # host, host:port or [address]:port
    # CSBR 6.8 gives no figure; RFC 3628 and ETSI EN 319 421's baseline policy: accuracy of 1 s or better.
    max_offset_seconds: float = Field(default=1.0, gt=0, le=10)
    # CSBR 6.8: "clock adjustments of one second or more are auditable events".
    step_seconds: float = Field(default=1.0, gt=0, le=1)
    # CSBR 6.8: synchronise with a UTC(k) source at least every 24 hours.
    max_sync_age_hours: float = Field(default=24.0, gt=0, le=24)
    # How often the sources are read. Public NTP servers expect 64 s or more; chrony can be read often.
    poll_seconds: float = Field(default=16.0, ge=1, le=1024)
    ntp_timeout_seconds: float = Field(default=2.0, gt=0, le=10)
    # The chronyc command and its options (e.g. ["chronyc", "-h", "127.0.0.1", "-p", "323"]).
    chronyc: tuple[str, ...] = Field(default=("chronyc",), min_length=1)
    chronyc_timeout_seconds: float = Field(default=5.0, gt=0, le=30)

    @field_validator("ntp_servers")
    @classmethod
    def _servers(cls, servers: tuple[str, ...]) -> tuple[str, ...]:
        for server in servers:
            parse_server(server)  # its ValueError names the entry
        if len(set(servers)) != len(servers):
            raise ValueError("an NTP server is named twice")
        return servers

    @model_validator(mode="after")
    def _consistent(self) -> ClockSettings:
        if len(set(self.sources)) != len(self.sources):
            raise ValueError("sources names a source twice")
        if "system" in self.sources and len(self.sources) > 1:
            raise ValueError('"system" trusts this host\'s clock as it is: it does not combine with other sources')
        if ("ntp" in self.sources) != bool(self.ntp_servers):
            raise ValueError('"ntp" in sources and ntp_servers go together')
        return self

    @property
    def stale_after(self) -> float:
        """A verdict older than this is not trusted: three polls, plus the longest a poll may take."""
        longest_poll = len(self.ntp_servers) * self.ntp_timeout_seconds + self.chronyc_timeout_seconds
        return 3 * self.poll_seconds + longest_poll

    def rules(self) -> WatchRules:
        return WatchRules(
            max_offset=self.max_offset_seconds,
            step=self.step_seconds,
            max_sync_age=self.max_sync_age_hours * 3600,
            stale_after=self.stale_after,
        )


__all__ = ["ClockSettings", "SourceName"]
