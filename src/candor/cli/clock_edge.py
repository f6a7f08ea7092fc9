"""The clock watch at the edge: its time sources from ``[clock]``, the watch ``candor serve`` and ``candor issue``
hand their signers, and ``candor clock status``.

``candor serve``: the serving process polls once before anything is signed (the listener certificate, the
reconciliation of interrupted issuances); the primary worker then polls every ``poll_seconds`` in a background
thread and publishes each verdict to ``clock-verdict.json`` in the data directory, which the other workers
re-read every second (:mod:`candor.timekeeping.shared`). Events go to the audit log as ``clock.*``.

A publicly-trusted hierarchy (any issuer not marked private) must name chrony or NTP servers: this host's clock
as it is ("system", or no source named) is refused at start-up for it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from candor.cli.context import Context, data_dir_from, open_context
from candor.defaults import CLOCK_CHRONY, CLOCK_SYSTEM
from candor.errors import CandorError, ErrorKind
from candor.storage import repositories
from candor.timekeeping import (
    VERDICT_FILE,
    ChronySource,
    ClockMonitor,
    ClockWatch,
    NtpSource,
    SystemSource,
    TimeSource,
    VerdictFollower,
    current_status,
    require_trustworthy,
)
from candor.timekeeping.audited import AuditedEvents
from candor.timekeeping.shared import publisher, read_verdict

log = logging.getLogger(__name__)


def clock_sources(context: Context) -> list[TimeSource]:
    settings = context.config.clock
    if settings.sources in ((), ("system",)):
        with context.db.session() as session:
            public = [issuer.name for issuer in repositories.list_issuers(session) if not issuer.private]
        if public:
            raise CandorError(
                ErrorKind.CONFIG,
                f"clock.sources: publicly-trusted issuers ({', '.join(public)}) need chrony or NTP servers "
                "(CSBR 6.8: a UTC(k) source at least every 24 hours); 'system' is for private hierarchies",
            )
        if not settings.sources:
            log.warning("[clock] names no time source: this host's clock is trusted as it is (private hierarchy)")
        return [SystemSource(context.clock)]
    sources: list[TimeSource] = []
    if "chrony" in settings.sources:
        sources.append(ChronySource(settings.chronyc, timeout=settings.chronyc_timeout_seconds))
    for server in settings.ntp_servers:
        sources.append(NtpSource(server, timeout=settings.ntp_timeout_seconds, clock=context.clock))
    return sources


def verdict_path(context: Context) -> Path:
    return context.data_dir / VERDICT_FILE


def open_watch(context: Context, *, publish: bool = False, audit: bool = True) -> ClockMonitor:
    """A watch over this data directory's sources, after its first poll (which may take a source's timeout)."""
    settings = context.config.clock
    monitor = ClockMonitor(
        clock_sources(context),
        settings.rules(),
        clock=context.clock,
        interval=settings.poll_seconds,
        on_event=AuditedEvents(context.db, context.clock) if audit else None,
        on_verdict=publisher(verdict_path(context)) if publish else None,
    )
    monitor.poll()
    return monitor


def require_clock(context: Context, what: str) -> None:
    """For one-shot commands that sign (the key ceremony, certifying a TSA unit): poll this data directory's
    sources once and refuse (``ErrorKind.UNAVAILABLE``) unless they confirm the clock (WS-08e, CSBR 6.8)."""
    require_trustworthy(open_watch(context), what)


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class ServingClock:
    """The watch one ``candor serve`` process signs by; the polling loop is among the primary's background tasks."""

    watch: ClockWatch
    background: tuple[Callable[[], Awaitable[None]], ...] = ()
    close: Callable[[], None] = _nothing


def serving_clock(context: Context, *, primary: bool) -> ServingClock:
    if primary:
        from candor.server import threaded_task

        monitor = open_watch(context, publish=True)
        return ServingClock(monitor, (threaded_task(monitor.run),))
    follower = VerdictFollower(verdict_path(context), context.config.clock.rules(), clock=context.clock)
    return ServingClock(follower, close=follower.close)


def initial_clock(config_text: str) -> tuple[str, str]:
    """``candor init``: the template's ``[clock]`` names chrony when chronyd answers here, synchronised, and keeps
    "system" otherwise (a machine without chrony running a local PKI); the config text, and a line saying which."""
    reading = ChronySource(timeout=5.0).sample()
    if reading.synchronised:
        chosen = config_text.replace(CLOCK_SYSTEM, CLOCK_CHRONY, 1)
        return chosen, "clock: chronyd is synchronised here; [clock] follows it"
    why = reading.error or "chronyd is not synchronised"
    return config_text, f"clock: {why}; [clock] trusts this host's clock as it is (a local PKI only)"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    clock = sub.add_parser("clock", help="the clock watch (CSBR 6.8)")
    clock_sub = clock.add_subparsers(dest="clock_command", required=True, metavar="ACTION")
    status = clock_sub.add_parser("status", help="read every time source now and show the verdict")
    status.set_defaults(handler=clock_status)


def clock_status(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Each source's reading, the verdict they give now, and the verdict ``candor serve`` last published. Exit 0
    when the clock is trustworthy now, else one line saying why (exit code of ErrorKind.UNAVAILABLE)."""
    with open_context(data_dir_from(args.data_dir, environ), environ) as context:
        monitor = open_watch(context, audit=False)
        rules = context.config.clock.rules()
        for sample in monitor.samples:
            print(f"source {sample.describe()}", flush=True)
        now = monitor.status()
        if now.trustworthy:
            print(f"verdict: trustworthy, offset {now.offset_seconds:+.6f} s (bound {rules.max_offset:g} s)")
        path = verdict_path(context)
        try:
            published = read_verdict(path)
        except (OSError, ValueError) as exc:
            print(f"candor serve's verdict: {path} cannot be read: {exc}")
        else:
            if published is not None:
                served = current_status(published, rules, wall=context.clock.now(), mono=time.monotonic())
                age = time.monotonic() - published.mono
                said = "trustworthy" if served.trustworthy else f"not trustworthy: {served.reason}"
                print(f"candor serve's verdict ({path.name}, {age:.0f} s old): {said}")
    sys.stdout.flush()
    if not now.trustworthy:
        raise CandorError(ErrorKind.UNAVAILABLE, f"the clock is not trustworthy: {now.reason}")
    return 0


__all__ = [
    "ServingClock",
    "add_parser",
    "clock_sources",
    "clock_status",
    "initial_clock",
    "open_watch",
    "require_clock",
    "serving_clock",
]
