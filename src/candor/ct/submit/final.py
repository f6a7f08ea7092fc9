"""Final certificates to the logs whose SCTs they embed (RFC 6962 4.1 add-chain), through a durable queue.

The queue is ``ct_submissions``: one row per (certificate, log) named by the certificate's embedded SCTs
(:mod:`.owed`). ``candor serve``'s signer writes the rows in the transaction that stores the final certificate
(:meth:`CtSubmitter.queue_final`) and wakes the drain loop (:meth:`FinalSubmissions.wake`), so the request that
finalised the order never waits for a log; ``submit_final(certificate)`` (``candor issue``) writes any rows
still missing and tries them at once. A log that fails keeps its row with ``last_error`` and a
``next_attempt_at`` after an exponential backoff (30 s doubling, capped by ``final_retry_max_seconds``).
``drain(now)`` tries the rows that are due, one attempt each, a batch at a time, and runs in one process
(:func:`run_drain_loop`); rows are claimed by one conditional update before they are tried, so two drainers
never submit the same row at once. Rows survive restarts: nothing owed to a log is only in memory.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Connection, Row, bindparam, func, select, update
from sqlalchemy.orm import Session

from candor.clock import Clock
from candor.ct.log import tls
from candor.ct.submit.client import CtSubmitter, InFlight, LogOutcome, Target, log_line
from candor.ct.submit.owed import queue_owed
from candor.ct.submit.sct import SctError, embedded_scts
from candor.errors import CandorError, ErrorKind
from candor.storage import Database
from candor.storage.models import CertificateRecord, Issuer, SerialRecord
from candor.storage.models_ct_submit import CtSubmission

log = logging.getLogger(__name__)

FIRST_RETRY = timedelta(seconds=30)
LEASE = timedelta(minutes=5)  # a claimed row is not retried by another drainer for this long
# After a wake-up, let more certificates join the batch: a pass costs two write transactions (claim, settle) and
# the logs' one, whatever its size, and nothing waits on it (the SCTs are embedded already).
GATHER_SECONDS = 1.0
STOP_POLL_SECONDS = 0.5  # how soon the drain loop notices it is asked to stop


@dataclass(frozen=True)
class DrainReport:
    submitted: int  # rows now done
    failed: int  # rows tried and rescheduled
    pending: int  # rows not done, after this pass


@dataclass(frozen=True)
class _Owed:
    row_id: int
    log_id: bytes
    description: str
    certificate: bytes  # the final certificate, DER
    chain: tuple[bytes, ...]  # its issuers upward, root excluded
    root: bytes | None


class FinalSubmissions:
    def __init__(self, *, db: Database, submitter: CtSubmitter, clock: Clock, batch: int = 100) -> None:
        self._db = db
        self._submitter = submitter
        self._clock = clock
        self._batch = batch
        self._due = threading.Event()
        self._chains: dict[int, tuple[tuple[bytes, ...], bytes | None]] = {}  # issuer id -> (chain, root)

    def submit_final(self, certificate: x509.Certificate) -> list[LogOutcome]:
        """Queue *certificate* (stored by the signer) for every log whose SCT it embeds, and try each now."""
        der = certificate.public_bytes(Encoding.DER)
        try:
            scts = embedded_scts(certificate)
        except SctError as exc:
            raise CandorError(ErrorKind.INTERNAL, f"the certificate's SCT list cannot be read: {exc}") from None
        now = self._clock.now()
        with self._db.connection() as connection:
            serial_id = connection.execute(
                select(CertificateRecord.serial_id).where(
                    CertificateRecord.fingerprint_sha256 == hashlib.sha256(der).hexdigest(),
                    CertificateRecord.kind == "certificate",
                )
            ).scalar_one_or_none()
            if serial_id is None:
                raise CandorError(ErrorKind.NOT_FOUND, "CT: this final certificate is not one Candor stored")
            queue_owed(
                connection, self._submitter.log_list, serial_id=serial_id, certificate_der=der,
                log_ids=[sct.log_id for sct in scts], now=now,
            )  # fmt: skip
        return self._run(self._claim(now, serial_id=serial_id), now)

    def wake(self) -> None:
        """Rows were queued: the drain loop runs a pass now instead of at its next interval."""
        self._due.set()

    def drain(self, now: datetime) -> DrainReport:
        """Try every queued submission due at *now* (one attempt each, a batch at a time); report what happened."""
        outcomes: list[LogOutcome] = []
        while self._any_due(now):  # looked for read-only first: a pass that finds nothing due writes nothing
            claimed = self._claim(now)
            outcomes += self._run(claimed, now)
            if len(claimed) < self._batch:
                break
        with self._db.reader() as connection:
            pending = connection.execute(_PENDING).scalar_one()
        done = sum(1 for o in outcomes if o.sct is not None)
        return DrainReport(submitted=done, failed=len(outcomes) - done, pending=pending)

    def pending(self) -> list[CtSubmission]:
        """The rows not yet done, for an operator's view."""
        with self._db.session() as session:
            return list(session.scalars(select(CtSubmission).where(CtSubmission.done.is_(False))).all())

    def wait(self, interval: timedelta, stop: threading.Event) -> None:
        """Until *interval* has passed, :meth:`wake` was called (then a moment more, to gather a batch) or *stop*
        is set."""
        deadline = time.monotonic() + interval.total_seconds()
        while not stop.is_set() and not self._due.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._due.wait(min(left, STOP_POLL_SECONDS))
        if self._due.is_set():
            stop.wait(GATHER_SECONDS)
            self._due.clear()  # what was queued so far is committed: the next pass claims it

    # -- internals ------------------------------------------------------------------------------------------
    def _any_due(self, now: datetime) -> bool:
        with self._db.reader() as connection:
            return connection.execute(_DUE, {"b_now": now, "b_limit": 1}).first() is not None

    def _claim(self, now: datetime, *, serial_id: int | None = None) -> list[_Owed]:
        """Rows due at *now*, moved out of other drainers' reach for LEASE by one conditional update (a row
        another drainer claimed meanwhile no longer matches it), with what submitting them needs."""
        statement = _CLAIM if serial_id is None else _CLAIM_SERIAL
        parameters = {"b_now": now, "b_limit": self._batch, "b_serial": serial_id, "next_attempt_at": now + LEASE}
        with self._db.connection() as connection:
            claimed = connection.execute(statement, parameters).all()
            return self._with_chains(connection, claimed)

    def _with_chains(self, connection: Connection, claimed: Sequence[Row[int, int, bytes, str]]) -> list[_Owed]:
        if not claimed:
            return []
        serials = sorted({row.serial_id for row in claimed})
        stored = {
            serial: (issuer_id, der)
            for serial, issuer_id, der in connection.execute(_CERTIFICATES, {"b_serials": serials})
        }
        owed = []
        for row in sorted(claimed, key=lambda r: r.id):
            if row.serial_id not in stored:  # the rows are written with the certificate: a broken database
                raise CandorError(ErrorKind.INTEGRITY, f"CT: submission {row.id} names no stored certificate")
            issuer_id, der = stored[row.serial_id]
            chain, root = self._chain(connection, issuer_id)
            owed.append(_Owed(row.id, row.log_id, row.log_description, der, chain, root))
        return owed

    def _chain(self, connection: Connection, issuer_id: int) -> tuple[tuple[bytes, ...], bytes | None]:
        """The issuer and those above it (DER), the root apart: issuers never change, so read once."""
        known = self._chains.get(issuer_id)
        if known is not None:
            return known
        chain: list[bytes] = []
        root: bytes | None = None
        with Session(bind=connection) as session:
            issuer: Issuer | None = session.get(Issuer, issuer_id)
            while issuer is not None:
                if issuer.kind == "root":
                    root = issuer.certificate_der
                    break
                chain.append(issuer.certificate_der)
                issuer = issuer.parent
        self._chains[issuer_id] = (tuple(chain), root)
        return self._chains[issuer_id]

    def _run(self, owed: Sequence[_Owed], now: datetime) -> list[LogOutcome]:
        if not owed:
            return []
        started = time.monotonic()
        deadline = started + self._submitter.settings.deadline_seconds
        flight: InFlight[_Owed] = InFlight(self._submitter, cancel=threading.Event(), deadline=deadline)
        targets: dict[int, Target] = {}
        outcomes: dict[int, LogOutcome] = {}
        for item in owed:
            known = self._submitter.log_list.by_id(item.log_id)
            target = self._submitter.target(known) if known is not None else None
            if target is None:
                continue
            targets[item.row_id] = target
            ders = [item.certificate, *item.chain, *([item.root] if target.include_root and item.root else [])]
            entry = tls.SignedEntry(tls.EntryType.X509, certificate=item.certificate)  # RFC 6962 3.2 x509_entry
            flight.start(item, target, ders, entry, precertificate=False, not_before=None, attempts_allowed=1)
        while flight.running():
            done = flight.collect()
            if not done:
                break
            for item, finished in done:
                log_line("add-chain", finished)
                outcomes[item.row_id] = finished
        for item in flight.running():  # the deadline passed: due again after the backoff
            late = LogOutcome(targets[item.row_id].log, None, 1, deadline - started, "no answer before the deadline")
            outcomes[item.row_id] = late
        settled: list[tuple[_Owed, LogOutcome | None, str | None]] = []
        for item in owed:
            outcome = outcomes.get(item.row_id)
            problem = "the log is not in the log list, or is disabled" if item.row_id not in targets else None
            settled.append((item, outcome, problem if outcome is None else outcome.error))
        self._settle(settled, now)
        return [outcome for _, outcome, _ in settled if outcome is not None]

    def _settle(self, settled: Sequence[tuple[_Owed, LogOutcome | None, str | None]], now: datetime) -> None:
        """Every outcome of a pass, in one transaction: done with the SCT's timestamp, or due again later."""
        cap = timedelta(seconds=self._submitter.settings.final_retry_max_seconds)
        updated_at = self._clock.now()
        done = [(item, outcome) for item, outcome, _ in settled if outcome is not None and outcome.sct is not None]
        failed = [(item, outcome, error) for item, outcome, error in settled if outcome is None or outcome.sct is None]
        with self._db.connection() as connection:
            if done:  # the usual case: one statement for all, attempts counted up in place
                connection.execute(_SETTLE_DONE, [
                    {"b_id": item.row_id, "b_attempts": outcome.attempts, "updated_at": updated_at, "done": True,
                     "last_error": None, "sct_timestamp": outcome.sct.sct.timestamp}
                    for item, outcome in done if outcome.sct is not None
                ])  # fmt: skip
            if not failed:
                return
            rows = [item.row_id for item, _, _ in failed]
            attempts_before = {row_id: attempts for row_id, attempts in connection.execute(_ATTEMPTS, {"b_ids": rows})}
            for item, outcome, error in failed:
                attempts = attempts_before[item.row_id] + (outcome.attempts if outcome is not None else 1)
                next_attempt_at = now + min(cap, FIRST_RETRY * (2 ** min(attempts - 1, 20)))
                last_error = (error or "failed")[:500]
                log.warning(
                    "ct.submit.final log=%r row=%d attempts=%d next_attempt_at=%s error=%r",
                    item.description, item.row_id, attempts, next_attempt_at.isoformat(), last_error,
                )  # fmt: skip
                values = {"attempts": attempts, "updated_at": updated_at, "last_error": last_error,
                          "next_attempt_at": next_attempt_at}  # fmt: skip
                connection.execute(_SETTLE, {"b_id": item.row_id, **values})


# The queue's statements, built once. A claim is one conditional UPDATE: a row another drainer claimed meanwhile
# no longer matches it.
_DUE = (
    select(CtSubmission.id)
    .where(CtSubmission.done.is_(False), CtSubmission.next_attempt_at <= bindparam("b_now"))
    .order_by(CtSubmission.next_attempt_at)
    .limit(bindparam("b_limit"))
)
_CLAIMED = (CtSubmission.id, CtSubmission.serial_id, CtSubmission.log_id, CtSubmission.log_description)
_STILL_DUE = (CtSubmission.done.is_(False), CtSubmission.next_attempt_at <= bindparam("b_now"))
_CLAIM = update(CtSubmission).where(CtSubmission.id.in_(_DUE.scalar_subquery()), *_STILL_DUE).returning(*_CLAIMED)
_CLAIM_SERIAL = (
    update(CtSubmission)
    .where(CtSubmission.id.in_(_DUE.where(CtSubmission.serial_id == bindparam("b_serial")).scalar_subquery()))
    .where(*_STILL_DUE)
    .returning(*_CLAIMED)
)
_CERTIFICATES = (
    select(CertificateRecord.serial_id, SerialRecord.issuer_id, CertificateRecord.der)
    .join(SerialRecord, SerialRecord.id == CertificateRecord.serial_id)
    .where(CertificateRecord.serial_id.in_(bindparam("b_serials", expanding=True)))
    .where(CertificateRecord.kind == "certificate")
)
_PENDING = select(func.count()).select_from(CtSubmission).where(CtSubmission.done.is_(False))
_ATTEMPTS = select(CtSubmission.id, CtSubmission.attempts).where(
    CtSubmission.id.in_(bindparam("b_ids", expanding=True))
)
_SETTLE = update(CtSubmission).where(CtSubmission.id == bindparam("b_id"))
_SETTLE_DONE = _SETTLE.values(attempts=CtSubmission.attempts + bindparam("b_attempts"))


def run_drain_loop(
    final: FinalSubmissions, *, clock: Clock, stop: threading.Event, interval: timedelta = timedelta(seconds=30)
) -> None:
    """Call ``final.drain`` when woken (:meth:`FinalSubmissions.wake`) or every *interval*, until *stop* is set
    (``candor serve``'s primary process runs this in a thread). A failed pass (database unavailable) is logged
    and tried again next time."""
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
        final.wait(interval, stop)


__all__ = ["DrainReport", "FinalSubmissions", "run_drain_loop"]
