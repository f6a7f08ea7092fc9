"""The clock watch's events in the hash-chained audit log (BR 5.4.1, CSBR 6.8)."""

from __future__ import annotations

from candor.audit import AuditLog
from candor.clock import Clock
from candor.storage import Database
from candor.timekeeping.monitor import ClockEvent

SUBJECT = "system clock"


class AuditedEvents:
    """For ``ClockMonitor(on_event=...)``: each event in its own transaction. A failure propagates, so that the
    watch keeps the event and tries again at its next poll."""

    def __init__(self, db: Database, clock: Clock, *, actor: str = "clock-watch") -> None:
        self._db, self._audit, self._actor = db, AuditLog(clock), actor

    def __call__(self, event: ClockEvent) -> None:
        with self._db.session() as session:
            self._audit.record(
                session,
                actor=self._actor,
                action=event.action,
                subject=SUBJECT,
                outcome=event.outcome,
                details=dict(event.details),
            )


__all__ = ["SUBJECT", "AuditedEvents"]
