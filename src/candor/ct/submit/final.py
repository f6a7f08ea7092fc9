"""Final certificates to the logs whose SCTs they embed (RFC 6962 4.1 add-chain), through a durable queue.

``submit_final(certificate)`` writes one ``ct_submissions`` row per log named by the certificate's embedded
SCTs, then tries them at once; a log that fails keeps its row with ``last_error`` and a ``next_attempt_at``
after an exponential backoff (30 s doubling, capped by ``final_retry_max_seconds``). ``drain(now)`` retries
the rows that are due, one attempt each, and is meant to run periodically in one process
(:func:`run_drain_loop`); a row is claimed with a conditional update before it is tried, so two drainers never
submit the same row at once. Rows survive restarts: nothing owed to a log is only in memory.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from candor.clock import Clock
from candor.ct.submit.client import CtSubmitter, LogOutcome, log_line
from candor.ct.submit.sct import SctError, embedded_scts, x509_entry
from candor.errors import CandorError, ErrorKind
from candor.storage import Database, orders
from candor.storage.models import CertificateRecord, Issuer, SerialRecord
from candor.storage.models_ct_submit import CtSubmission

log = logging.getLogger(__name__)

FIRST_RETRY = timedelta(seconds=30)
LEASE = timedelta(minutes=5)  # a claimed row is not retried by another drainer for this long


@dataclass(frozen=True)
class DrainReport:
    submitted: int  # rows now done
    failed: int  # rows tried and rescheduled
    pending: int  # rows not done, after this pass


class FinalSubmissions:
    def __init__(self, *, db: Database, submitter: CtSubmitter, clock: Clock, batch: int = 100) -> None:
        self._db = db
        self._submitter = submitter
        self._clock = clock
        self._batch = batch

    def submit_final(self, certificate: x509.Certificate) -> list[LogOutcome]:
        """Queue *certificate* (stored by the signer) for every log whose SCT it embeds, and try each now."""
        der = certificate.public_bytes(Encoding.DER)
        try:
            scts = embedded_scts(certificate)
        except SctError as exc:
            raise CandorError(ErrorKind.INTERNAL, f"the certificate's SCT list cannot be read: {exc}") from None
        now = self._clock.now()
        with self._db.session() as session:
            found = orders.find_certificate_by_der(session, der)
            if found is None:
                raise CandorError(ErrorKind.NOT_FOUND, "CT: this final certificate is not one Candor stored")
            serial, _issuer = found
            existing = set(
                session.scalars(select(CtSubmission.log_id).where(CtSubmission.serial_id == serial.id)).all()
            )
            for sct in scts:
                if sct.log_id in existing:
                    continue
                existing.add(sct.log_id)
                known = self._submitter.log_list.by_id(sct.log_id)
                session.add(
                    CtSubmission(
                        serial_id=serial.id,
                        log_id=sct.log_id,
                        log_description=known.description if known is not None else "a log not in the log list",
                        certificate_sha256=hashlib.sha256(der).hexdigest(),
                        attempts=0,
                        next_attempt_at=now,
                        last_error=None,
                        done=False,
                        sct_timestamp=None,
                        created_at=now,
                        updated_at=now,
                    )
                )
            serial_id = serial.id
        return self._run(self._claim(now, serial_id=serial_id), now)

    def drain(self, now: datetime) -> DrainReport:
        """Retry every queued submission due at *now* (one attempt each); report what happened."""
        outcomes = self._run(self._claim(now), now)
        with self._db.session() as session:
            pending = len(session.scalars(select(CtSubmission.id).where(CtSubmission.done.is_(False))).all())
        done = sum(1 for o in outcomes if o.sct is not None)
        return DrainReport(submitted=done, failed=len(outcomes) - done, pending=pending)

    def pending(self) -> list[CtSubmission]:
        """The rows not yet done, for an operator's view."""
        with self._db.session() as session:
            return list(session.scalars(select(CtSubmission).where(CtSubmission.done.is_(False))).all())

    # -- internals ------------------------------------------------------------------------------------------
    def _claim(self, now: datetime, *, serial_id: int | None = None) -> list[int]:
        """Rows due at *now*, each moved out of reach of other drainers for LEASE by a conditional update."""
        claimed: list[int] = []
        with self._db.session() as session:
            query = select(CtSubmission.id, CtSubmission.next_attempt_at).where(
                CtSubmission.done.is_(False), CtSubmission.next_attempt_at <= now
            )
            if serial_id is not None:
                query = query.where(CtSubmission.serial_id == serial_id)
            rows = session.execute(query.order_by(CtSubmission.next_attempt_at).limit(self._batch)).all()
            for row_id, due in rows:
                result = session.execute(
                    update(CtSubmission)
                    .where(CtSubmission.id == row_id, CtSubmission.next_attempt_at == due, CtSubmission.done.is_(False))
                    .values(next_attempt_at=now + LEASE)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(row_id)
        return claimed

    def _run(self, row_ids: Sequence[int], now: datetime) -> list[LogOutcome]:
        if not row_ids:
            return []
        work: list[tuple[int, Future[LogOutcome] | None, str | None]] = []
        cancel = threading.Event()
        deadline = time.monotonic() + self._submitter.settings.deadline_seconds
        with self._db.session() as session:
            for row_id in row_ids:
                row = session.get(CtSubmission, row_id)
                assert row is not None
                known = self._submitter.log_list.by_id(row.log_id)
                target = self._submitter.target(known) if known is not None else None
                if target is None:
                    work.append((row_id, None, "the log is not in the log list, or is disabled"))
                    continue
                certificate, chain, root = _stored_chain(session, row.serial_id)
                ders = [certificate.public_bytes(Encoding.DER), *chain]
                if target.include_root and root is not None:
                    ders.append(root)
                future = self._submitter.submit_in_pool(
                    target, ders, x509_entry(certificate), precertificate=False, not_before=None,
                    cancel=cancel, deadline=deadline, attempts_allowed=1,
                )  # fmt: skip
                work.append((row_id, future, None))
        outcomes: list[LogOutcome] = []
        for row_id, pending, problem in work:
            outcome = pending.result() if pending is not None else None
            if outcome is not None:
                outcomes.append(outcome)
                log_line("add-chain", outcome)
            error = problem if outcome is None else outcome.error
            self._settle(row_id, outcome, error, now)
        return outcomes

    def _settle(self, row_id: int, outcome: LogOutcome | None, error: str | None, now: datetime) -> None:
        cap = timedelta(seconds=self._submitter.settings.final_retry_max_seconds)
        with self._db.session() as session:
            row = session.get(CtSubmission, row_id)
            assert row is not None
            row.updated_at = self._clock.now()
            if outcome is not None and outcome.sct is not None:
                row.attempts += outcome.attempts
                row.done, row.last_error, row.sct_timestamp = True, None, outcome.sct.sct.timestamp
                return
            row.attempts += outcome.attempts if outcome is not None else 1
            row.last_error = (error or "failed")[:500]
            row.next_attempt_at = now + min(cap, FIRST_RETRY * (2 ** min(row.attempts - 1, 20)))
            log.warning(
                "ct.submit.final log=%r serial_id=%d attempts=%d next_attempt_at=%s error=%r",
                row.log_description, row.serial_id, row.attempts, row.next_attempt_at.isoformat(), row.last_error,
            )  # fmt: skip


def _stored_chain(session: Session, serial_id: int) -> tuple[x509.Certificate, list[bytes], bytes | None]:
    """The final certificate (as stored) and its issuers upward (DER), the root apart."""
    serial = session.get(SerialRecord, serial_id)
    assert serial is not None
    der = session.scalars(
        select(CertificateRecord.der).where(
            CertificateRecord.serial_id == serial_id, CertificateRecord.kind == "certificate"
        )
    ).one()
    chain: list[bytes] = []
    root: bytes | None = None
    issuer: Issuer | None = session.get(Issuer, serial.issuer_id)
    while issuer is not None:
        if issuer.kind == "root":
            root = issuer.certificate_der
            break
        chain.append(issuer.certificate_der)
        issuer = issuer.parent
    return x509.load_der_x509_certificate(der), chain, root


def run_drain_loop(
    final: FinalSubmissions, *, clock: Clock, stop: threading.Event, interval: timedelta = timedelta(seconds=30)
) -> None:
    """Call ``final.drain`` every *interval* until *stop* is set (``candor serve``'s primary process runs this
    in a thread). A failed pass (database unavailable) is logged and tried again next time."""
    while not stop.is_set():
        try:
            report = final.drain(clock.now())
            if report.submitted or report.failed:
                log.info(
                    "ct.submit.final drain submitted=%d failed=%d pending=%d",
                    report.submitted, report.failed, report.pending,
                )  # fmt: skip
        except CandorError as exc:
            log.warning("ct.submit.final drain failed: %s", exc)
        stop.wait(interval.total_seconds())


__all__ = ["DrainReport", "FinalSubmissions", "run_drain_loop"]
