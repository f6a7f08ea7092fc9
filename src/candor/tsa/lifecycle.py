"""Keeping a serving process's units current, and the audit trail of the TSA's signing process (CSBR 6.8: "any
changes to its signing process MUST be an auditable event"; CSBR 5.4.1.2: start-up and shutdown).

Every serving process runs a :class:`UnitKeeper`: at start it loads every active unit still in its usage
period, refusing to start if one is not a compliant Timestamp certificate or its key is not the certified one;
then every ``unit_refresh_seconds`` it loads units certified since (a non-compliant one is refused and left
out) and applies status changes. The primary process (``primary=True``) also records the transitions, once
for the whole server: ``tsa.start`` and ``tsa.stop``; ``tsa.unit.switch`` when another unit starts signing (a
rotation); ``tsa.unit.retire`` when a unit's key usage period ends (CSBR 6.3.2: 15 months after notBefore),
setting its status; ``tsa.signing.refused`` when no unit may sign (an alert: every request then gets
systemFailure); ``tsa.unit.rotation_due`` once, ``rotation_warning_days`` before the current unit's period ends
with no successor certified; ``tsa.unit.refuse`` for a unit refused after start-up.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update

from candor.audit import AuditLog
from candor.clock import Clock
from candor.errors import CandorError, ErrorKind
from candor.storage import Database
from candor.storage.models_tsa import TsaUnit
from candor.tsa.token import TokenOptions
from candor.tsa.units import KeyLoader, UnitRecord, UnitSet, load_unit_records, prepare_unit, unit_statuses

log = logging.getLogger(__name__)
ACTOR = "tsa"


class UnitKeeper:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        units: UnitSet,
        *,
        load_key: KeyLoader,
        options: TokenOptions,
        warning: timedelta,
        primary: bool,
    ) -> None:
        self.db, self.clock, self.units = db, clock, units
        self.load_key, self.options, self.warning, self.primary = load_key, options, warning, primary
        self.audit = AuditLog(clock)
        self.known = 0  # the highest unit id read
        self.signing: str | None = None  # the unit the primary last saw signing
        self._warned: set[str] = set()

    def load(self) -> int:
        """Load every active unit still in (or before) its usage period; the number loaded. A unit that may not
        sign stops start-up with ``ErrorKind.POLICY`` or ``KEY``."""
        now = self.clock.now()
        with self.db.session() as session:
            records = load_unit_records(session)
        self.known = max((r.id for r in records), default=0)
        usable = [r for r in records if r.status == "active" and r.usable_until > now]
        self.units.add([prepare_unit(r, self.load_key, self.options) for r in usable])
        return len(usable)

    def start(self, url: str) -> None:
        current = self.units.current(self.clock.now())
        self.signing = current.record.name if current is not None else None
        if self.primary:
            names = [u.record.name for u in self.units.units]
            self._event("tsa.start", url, "info", policy=self.options.policy, units=names, signing=self.signing)
            if current is None:
                self._refusing(self.clock.now())

    def stop(self, url: str) -> None:
        if self.primary:
            self._event("tsa.stop", url, "info", signing=self.signing)

    def tick(self) -> None:
        """Read new units and status changes; in the primary, record what changed."""
        now = self.clock.now()
        with self.db.session() as session:
            fresh = load_unit_records(session, since_id=self.known)
            statuses = unit_statuses(session)
        for record in fresh:
            self.known = max(self.known, record.id)
            if record.status == "active" and record.usable_until > now:
                self._admit(record)
        self.units.set_status(statuses)
        if self.primary:
            self._retire_expired(now)
            self._transitions(now)

    def _admit(self, record: UnitRecord) -> None:
        try:
            unit = prepare_unit(record, self.load_key, self.options)
        except CandorError as exc:
            log.error("tsa: unit %s refused: %s", record.name, exc.message)
            if self.primary:
                self._event("tsa.unit.refuse", record.name, "failure", reason=exc.message)
            return
        self.units.add([unit])
        log.info("tsa: unit %s loaded (signs from %s)", record.name, record.signs_from.isoformat())

    def _retire_expired(self, now: datetime) -> None:
        expired = [u.record for u in self.units.units if u.record.status == "active" and u.record.usable_until <= now]
        for record in expired:
            with self.db.session() as session:
                session.execute(update(TsaUnit).where(TsaUnit.id == record.id).values(status="retired"))
                self.audit.record(
                    session, actor=ACTOR, action="tsa.unit.retire", subject=record.name, outcome="success",
                    details={"usable_until": record.usable_until.isoformat(),
                             "reason": "CSBR 6.3.2: the key is not used more than 15 months after notBefore"},
                )  # fmt: skip
        if expired:
            self.units.set_status({r.id: "retired" for r in expired})

    def _transitions(self, now: datetime) -> None:
        current = self.units.current(now)
        name = current.record.name if current is not None else None
        if name != self.signing:
            if name is not None:
                self._event("tsa.unit.switch", name, "success", previous=self.signing,
                            usable_until=current.record.usable_until.isoformat() if current else None)  # fmt: skip
                log.info("tsa: unit %s signs from now on (was %s)", name, self.signing)
            else:
                self._refusing(now)
            self.signing = name
        due = current is not None and current.record.usable_until - now <= self.warning
        if (
            due
            and current is not None
            and current.record.name not in self._warned
            and not self.units.successor(current)
        ):
            self._warned.add(current.record.name)
            until = current.record.usable_until.isoformat()
            log.warning(
                "tsa: unit %s may sign only until %s and no successor is certified: run 'candor tsa certify'",
                current.record.name, until,
            )  # fmt: skip
            self._event("tsa.unit.rotation_due", current.record.name, "info", usable_until=until)

    def _refusing(self, now: datetime) -> None:
        log.error("tsa: no unit may sign at %s: every request is refused (systemFailure) until one is certified", now)
        self._event(
            "tsa.signing.refused", self.options.policy, "failure",
            reason="no unit in its key usage period (CSBR 6.3.2)", at=now.isoformat(),
        )  # fmt: skip

    def _event(self, action: str, subject: str, outcome: str, **details: Any) -> None:
        try:
            with self.db.session() as session:
                self.audit.record(
                    session, actor=ACTOR, action=action, subject=subject, outcome=outcome, details=details
                )
        except CandorError as exc:
            if exc.kind is not ErrorKind.STORAGE:
                raise
            log.error("tsa: audit event %s could not be recorded: %s", action, exc.message)
