"""CA-side submission of precertificates: the :class:`~candor.issuance.ct.SctSource` the signer is given.

``obtain(precertificate, issuer)`` sends add-pre-chain (RFC 6962 4.2) to every log the list allows for the
certificate's notAfter, in parallel; each log gets a per-attempt timeout and a bounded number of attempts, with
exponential backoff after a connection error, a timeout, a 5xx or a 429 (honouring Retry-After up to the
backoff cap) and no retry after any other 4xx (the log refused the chain; asking again changes nothing). Every
SCT is verified against its log's key (RFC 6962 3.2) before it counts. Submission stops once the policy
(:mod:`.policy`) is met with *margin* extra SCTs where logs remain, or at the deadline; if the policy is not
met by then, ``obtain`` raises ``CandorError(UNAVAILABLE)`` naming each log that failed and why, and the signer
builds no final certificate (fail closed; the precertificate stays stored and revocable).

A log this process serves itself (a :class:`~candor.ct.submit.local.LocalLogs` transport names it) is handed the
chain directly from the caller's thread (:class:`InFlight`); any other log is asked over the transport on the
submitter's threads. Either way the SCT is checked the same way (:meth:`CtSubmitter.checked`).

Each log's outcome is a structured log line (``ct.submit ...``) and, when a database is given, one audit event
per submission (``ct.precertificate.submitted``) listing every log's outcome: written at once by ``obtain`` and
for a failure, or, for a success through ``obtain_unrecorded`` (:class:`~candor.issuance.ct.RecordingSctSource`),
by the signer in the transaction that stores the SCT list (one write transaction less per certificate; if that
transaction never commits, the issuance obtains its SCTs again and that submission is recorded then).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from candor.audit import AuditLog, PreparedEvent
from candor.clock import Clock
from candor.ct.log import tls
from candor.ct.submit.local import LocalLog, LocalLogs
from candor.ct.submit.loglist import LogInfo, LogList, load_log_list
from candor.ct.submit.owed import log_ids_of, queue_owed
from candor.ct.submit.policy import MAX_SCT_AFTER_NOT_BEFORE, evaluate
from candor.ct.submit.sct import (
    Sct,
    SctError,
    VerifiedSct,
    parse_sct_response,
    parse_serialized_sct,
    precert_entry,
    sct_list,
    verify_sct,
)
from candor.ct.submit.settings import CtSubmitSettings
from candor.ct.submit.transport import HttpTransport, Transport, TransportError
from candor.errors import CandorError, ErrorKind
from candor.storage import Database, serial_to_hex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """A log as this submitter reaches it: the list's entry with the operator's overrides applied."""

    log: LogInfo
    submission_url: str
    timeout: float
    include_root: bool


@dataclass(frozen=True)
class LogOutcome:
    log: LogInfo
    sct: VerifiedSct | None
    attempts: int
    seconds: float
    error: str | None = None  # why no SCT: one short phrase

    def summary(self) -> dict[str, object]:
        return {
            "log": self.log.description,
            "operator": self.log.operator,
            "log_id": base64.b64encode(self.log.log_id).decode(),
            "outcome": "sct" if self.sct is not None else "failed",
            "attempts": self.attempts,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "sct_timestamp": self.sct.sct.timestamp if self.sct is not None else None,
        }


@dataclass(frozen=True)
class Obtained:
    """:class:`~candor.issuance.ct.ObtainedScts`: the SCT list, and the audit event to write with it (prepared when
    the SCTs came back, so that the transaction that stores the list only inserts it; None without an audit log)."""

    sct_list: bytes
    event: PreparedEvent | None
    audit: AuditLog | None

    def record(self, target: Session | Connection, *, sequenced: bool | None = None) -> None:
        if self.event is None or self.audit is None:
            return
        if isinstance(target, Session):
            self.audit.append(target, self.event, sequenced=sequenced)
        else:
            if sequenced is None:
                raise CandorError(ErrorKind.INTERNAL, "recording on a connection: say whether it is sequenced")
            self.audit.append(target, self.event, sequenced=sequenced)


class CtSubmitter:
    """Submits to the logs of a log list; implements ``SctSource`` for the signer."""

    def __init__(
        self,
        log_list: LogList,
        *,
        clock: Clock,
        settings: CtSubmitSettings | None = None,
        ca_certificates: Sequence[x509.Certificate] = (),
        transport: Transport | None = None,
        db: Database | None = None,
        actor: str = "ct-submit",
        max_workers: int = 16,
    ) -> None:
        self.log_list = log_list
        self.settings = settings or CtSubmitSettings()
        self._clock = clock
        self._transport = transport or HttpTransport()
        self._local = transport if isinstance(transport, LocalLogs) else None
        self._by_subject = {c.subject.public_bytes(): c for c in ca_certificates}
        self._db = db
        self._audit = AuditLog(clock) if db is not None else None
        self._actor = actor
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ct-submit")

    @classmethod
    def from_settings(
        cls,
        settings: CtSubmitSettings,
        *,
        data_dir: Path,
        clock: Clock,
        ca_certificates: Sequence[x509.Certificate] = (),
        db: Database | None = None,
    ) -> CtSubmitter | None:
        """The submitter ``[ct.submit]`` describes, or None when no log list is configured."""
        path = settings.log_list_path(data_dir)
        if path is None:
            return None
        return cls(load_log_list(path), clock=clock, settings=settings, ca_certificates=ca_certificates, db=db)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- SctSource ----------------------------------------------------------------------------------------
    def obtain(self, precertificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
        obtained = self.obtain_unrecorded(precertificate, issuer)
        self._record_alone(obtained, precertificate)
        return obtained.sct_list

    # -- RecordingSctSource: the signer writes the audit event of a success in its final-intent transaction ----
    def obtain_unrecorded(self, precertificate: x509.Certificate, issuer: x509.Certificate) -> Obtained:
        not_before, not_after = precertificate.not_valid_before_utc, precertificate.not_valid_after_utc
        serial = serial_to_hex(precertificate.serial_number)
        targets = self.targets_for(not_after)
        if not targets:
            raise CandorError(
                ErrorKind.UNAVAILABLE, f"CT: no usable or qualified log in the log list accepts notAfter {not_after}"
            )
        entry = precert_entry(precertificate, issuer)
        chain, root = self.chain_above(issuer)
        leaf = precertificate.public_bytes(Encoding.DER)
        outcomes, verified = self._collect(targets, leaf, chain, root, entry, not_before, not_after)
        verdict = evaluate(verified, not_before=not_before, not_after=not_after)
        event = self._event(serial=serial, issuer=issuer, outcomes=outcomes, policy=verdict.explain(), met=verdict.met)
        if not verdict.met:
            self._record_alone(Obtained(b"", event, self._audit), precertificate)
            failures = "; ".join(f"{o.log.description}: {o.error}" for o in outcomes if o.sct is None)
            raise CandorError(
                ErrorKind.UNAVAILABLE,
                f"CT policy not met for precertificate {serial}: {verdict.explain()}"
                + (f" (failed: {failures})" if failures else ""),
            )
        ordered = sorted(verified, key=lambda v: (v.sct.timestamp, v.log.log_id))
        return Obtained(sct_list([v.sct for v in ordered]), event, self._audit)

    # -- FinalQueue: the signer's last stage --------------------------------------------------------------
    def queue_final(
        self, connection: Connection, *, serial_id: int, certificate_der: bytes, scts: bytes, now: datetime
    ) -> None:
        """Record, in the transaction that stores the final certificate, that it is owed to each log whose SCT
        it embeds (RFC 6962 4.1 add-chain); :class:`~candor.ct.submit.final.FinalSubmissions` pays it."""
        queue_owed(
            connection, self.log_list, serial_id=serial_id, certificate_der=certificate_der,
            log_ids=log_ids_of(scts), now=now,
        )  # fmt: skip

    # -- shared with final-certificate submission ---------------------------------------------------------
    def targets_for(self, not_after: datetime) -> list[Target]:
        return [t for t in (self.target(log) for log in self.log_list.usable_for(not_after)) if t is not None]

    def target(self, log_info: LogInfo) -> Target | None:
        """*log_info* with its override applied; None if the operator disabled it."""
        override = self.settings.override_for(log_info.log_id)
        if override is not None and override.disabled:
            return None
        url = (override.url if override is not None and override.url else None) or log_info.submission_url
        timeout = (override.attempt_timeout_seconds if override is not None else None) or (
            self.settings.attempt_timeout_seconds
        )
        return Target(
            log=log_info,
            submission_url=url if url.endswith("/") else url + "/",
            timeout=timeout,
            include_root=override.include_root if override is not None else False,
        )

    def chain_above(self, issuer: x509.Certificate) -> tuple[list[bytes], bytes | None]:
        """The issuing CA and the intermediates above it (DER, from the CA certificates given), and the root
        if known. RFC 6962 4.1: the chain is the submitted certificate's, "the root certificate MAY be
        omitted"."""
        chain, current = [issuer], issuer
        root: x509.Certificate | None = None
        while current.subject != current.issuer and len(chain) < 10:
            parent = self._by_subject.get(current.issuer.public_bytes())
            if parent is None:
                break
            if parent.subject == parent.issuer:
                root = parent
                break
            chain.append(parent)
            current = parent
        ders = [c.public_bytes(Encoding.DER) for c in chain]
        return ders, root.public_bytes(Encoding.DER) if root is not None else None

    def submit_to(
        self,
        target: Target,
        ders: Sequence[bytes],
        entry: tls.SignedEntry,
        *,
        precertificate: bool,
        not_before: datetime | None,
        cancel: threading.Event,
        deadline: float,
        attempts_allowed: int | None = None,
        tried: str | None = None,
    ) -> LogOutcome:
        """One log: attempts with backoff until an SCT verifies, the log refuses, or attempts/deadline run out.
        With *not_before*, an SCT more than 48 h after it is refused (WS-08c: only for SCTs to embed). *tried*:
        why a first attempt made elsewhere (:class:`InFlight`, to a log served here) failed; it counts as an
        attempt, and the next waits the backoff."""
        endpoint = "add-pre-chain" if precertificate else "add-chain"
        url = f"{target.submission_url}ct/v1/{endpoint}"
        body = json.dumps({"chain": [base64.b64encode(d).decode() for d in ders]}).encode()
        settings, started = self.settings, time.monotonic()
        delay, attempts, error = settings.backoff_seconds, 0, "not attempted"
        allowed = attempts_allowed or settings.attempts
        if tried is not None:
            attempts, error = 1, tried
            if attempts < allowed and delay < _left(deadline):
                cancel.wait(delay)
                delay = min(delay * 2, settings.max_backoff_seconds)
        while attempts < allowed and not cancel.is_set():
            attempts += 1
            pause = delay
            try:
                answer = self._transport.post_json(url, body, timeout=min(target.timeout, _left(deadline)))
            except TransportError as exc:
                error = str(exc)
            else:
                if answer.status == 200:
                    try:
                        sct = parse_sct_response(answer.body)
                    except SctError as exc:
                        seconds = time.monotonic() - started
                        return LogOutcome(target.log, None, attempts, seconds, f"rejected SCT: {exc}")
                    return self.checked(target, sct, entry, not_before, attempts, started)
                error = f"HTTP {answer.status}{_log_error(answer.body)}"
                if answer.status != 429 and answer.status < 500:
                    break  # RFC 6962 4: a 4xx is the log's refusal of this chain; retrying changes nothing
                if answer.retry_after is not None:
                    pause = max(pause, min(answer.retry_after, settings.max_backoff_seconds))
            if attempts >= allowed or pause >= _left(deadline):
                break
            cancel.wait(pause)
            delay = min(delay * 2, settings.max_backoff_seconds)
        if cancel.is_set() and attempts == 0:
            error = "not needed: the policy was met"
        return LogOutcome(
            target.log, None, attempts, time.monotonic() - started, f"{error} after {attempts} attempt(s)"
        )

    def submit_in_pool(
        self, target: Target, ders: Sequence[bytes], entry: tls.SignedEntry, **options: object
    ) -> Future[LogOutcome]:
        """:meth:`submit_to` on this submitter's threads (the logs are asked in parallel)."""
        return self._pool.submit(self.submit_to, target, ders, entry, **options)  # type: ignore[arg-type]

    def local_log(self, target: Target) -> LocalLog | None:
        """The log object behind *target* when this process serves it (the submission URL is one of its own)."""
        return self._local.log_for(target.submission_url) if self._local is not None else None

    def checked(
        self,
        target: Target,
        sct: Sct,
        entry: tls.SignedEntry,
        not_before: datetime | None,
        attempts: int,
        started: float,
    ) -> LogOutcome:
        """The outcome of an SCT *target* returned for *entry*: it counts only if it verifies with the listed log's
        key (RFC 6962 3.2), is not from the future, and (SCTs to embed) is within 48 h of notBefore."""
        skew = timedelta(seconds=self.settings.max_future_skew_seconds)
        try:
            verified = verify_sct(sct, target.log, entry, now=self._clock.now(), max_skew=skew)
            if not_before is not None and sct.time - not_before > MAX_SCT_AFTER_NOT_BEFORE:
                raise SctError("the SCT is more than 48 h after notBefore (WS-08c, BR 7.1.2.7)")
        except SctError as exc:  # a log that signs wrongly is not asked again
            return LogOutcome(target.log, None, attempts, time.monotonic() - started, f"rejected SCT: {exc}")
        return LogOutcome(target.log, verified, attempts, time.monotonic() - started)

    # -- internals ------------------------------------------------------------------------------------------
    def _collect(
        self,
        targets: Sequence[Target],
        leaf: bytes,
        chain: Sequence[bytes],
        root: bytes | None,
        entry: tls.SignedEntry,
        not_before: datetime,
        not_after: datetime,
    ) -> tuple[list[LogOutcome], list[VerifiedSct]]:
        cancel = threading.Event()
        deadline = time.monotonic() + self.settings.deadline_seconds
        flight: InFlight[Target] = InFlight(self, cancel=cancel, deadline=deadline)
        for target in targets:
            ders = [leaf, *chain, *([root] if target.include_root and root is not None else [])]
            flight.start(target, target, ders, entry, precertificate=True, not_before=not_before)
        needed = evaluate([], not_before=not_before, not_after=not_after).required.scts
        wanted = min(needed + self.settings.margin, len(targets))
        outcomes: list[LogOutcome] = []
        verified: list[VerifiedSct] = []
        while flight.running():
            done = flight.collect()
            if not done:
                break
            for _, outcome in done:
                outcomes.append(outcome)
                log_line("add-pre-chain", outcome)
                if outcome.sct is not None:
                    verified.append(outcome.sct)
            met = evaluate(verified, not_before=not_before, not_after=not_after).met
            if met and not self.settings.wait_for_all and len(verified) >= wanted:
                break
        cancel.set()
        met = evaluate(verified, not_before=not_before, not_after=not_after).met
        for target in flight.running():
            reason = "not awaited: the policy was met" if met else "no answer before the deadline"
            outcomes.append(LogOutcome(target.log, None, 0, self.settings.deadline_seconds, reason))
        return outcomes, verified

    def _event(
        self, *, serial: str, issuer: x509.Certificate, outcomes: Sequence[LogOutcome], policy: str, met: bool
    ) -> PreparedEvent | None:
        """The audit event of one precertificate's submission (every log's outcome), prepared."""
        if self._audit is None:
            return None
        return self._audit.prepare(
            actor=self._actor,
            action="ct.precertificate.submitted",
            subject=f"serial {serial}",
            outcome="success" if met else "failure",
            details={
                "issuer": issuer.subject.rfc4514_string(),
                "serial": serial,
                "policy": policy,
                "logs": [o.summary() for o in outcomes],
            },
            dialect=self._db.engine.dialect if self._db is not None else None,
        )

    def _record_alone(self, obtained: Obtained, precertificate: x509.Certificate) -> None:
        if self._db is None or self._audit is None:
            return
        try:
            with self._db.session() as session:
                obtained.record(session)
        except CandorError as exc:  # the signer audits its own stages; this record is for the operator
            serial = serial_to_hex(precertificate.serial_number)
            log.warning("ct.submit audit event for serial %s not written: %s", serial, exc)


K = TypeVar("K")


class InFlight(Generic[K]):
    """Submissions under way, each under a key of the caller's. A log this process serves is handed the chain
    from the caller's thread (its own chain checks, then its batch writer: no thread hop, no JSON round trip);
    any other log is asked over the transport on the submitter's threads. The SCT a log served here returns is
    read from its RFC 6962 3.3 serialization and checked by :meth:`CtSubmitter.checked`, as any log's is. If
    that log cannot take the chain or store it, the attempt is made again through the transport (which answers
    for it with the same JSON as its HTTP endpoints), with the usual backoff, attempts and refusals."""

    def __init__(self, submitter: CtSubmitter, *, cancel: threading.Event, deadline: float) -> None:
        self._submitter = submitter
        self._cancel = cancel
        self._deadline = deadline
        self._running: dict[Future[Any], tuple[K, Target, Callable[[Future[Any]], LogOutcome | None]]] = {}

    def start(
        self,
        key: K,
        target: Target,
        ders: Sequence[bytes],
        entry: tls.SignedEntry,
        *,
        precertificate: bool,
        not_before: datetime | None,
        attempts_allowed: int | None = None,
    ) -> None:
        options: dict[str, Any] = {
            "precertificate": precertificate, "not_before": not_before, "attempts_allowed": attempts_allowed,
        }  # fmt: skip
        local = self._submitter.local_log(target)
        if local is None or not self._direct(key, target, local, ders, entry, options):
            self._pool(key, target, ders, entry, options)

    def running(self) -> list[K]:
        """The keys of the submissions not finished yet."""
        return [key for key, _, _ in self._running.values()]

    def collect(self) -> list[tuple[K, LogOutcome]]:
        """Wait until at least one submission has finished, or the deadline; the outcomes finished ([] at the
        deadline: what is still running is in :meth:`running`)."""
        while self._running:
            done, _ = wait(list(self._running), timeout=_left(self._deadline), return_when=FIRST_COMPLETED)
            if not done:
                return []
            finished = []
            for future in done:
                key, _, finish = self._running.pop(future)
                outcome = finish(future)
                if outcome is not None:  # None: tried again under the same key
                    finished.append((key, outcome))
            if finished:
                return finished
        return []

    def _direct(
        self,
        key: K,
        target: Target,
        local: LocalLog,
        ders: Sequence[bytes],
        entry: tls.SignedEntry,
        options: dict[str, Any],
    ) -> bool:
        """Hand the chain to *local*; False if it refused it or cannot take it now (the transport's attempt then
        says which, in the log's own words, and retries what is worth retrying)."""
        started = time.monotonic()
        try:
            stored = local.submit(local.check(ders, precertificate=options["precertificate"]))
        except Exception:
            return False

        def landed(future: Future[Any]) -> LogOutcome | None:
            return self._landed(key, target, ders, entry, started, options, future)

        self._running[stored] = (key, target, landed)
        return True

    def _pool(self, key: K, target: Target, ders: Sequence[bytes], entry: tls.SignedEntry,
              options: dict[str, Any]) -> None:  # fmt: skip
        future = self._submitter.submit_in_pool(
            target, ders, entry, cancel=self._cancel, deadline=self._deadline, **options
        )
        self._running[future] = (key, target, Future.result)

    def _landed(
        self,
        key: K,
        target: Target,
        ders: Sequence[bytes],
        entry: tls.SignedEntry,
        started: float,
        options: dict[str, Any],
        future: Future[Any],
    ) -> LogOutcome | None:
        error = future.exception()
        if error is None:
            try:
                sct = parse_serialized_sct(future.result().serialize())
            except SctError as exc:
                return LogOutcome(target.log, None, 1, time.monotonic() - started, f"rejected SCT: {exc}")
            return self._submitter.checked(target, sct, entry, options["not_before"], 1, started)
        reason = f"the log did not store the entry ({type(error).__name__})"
        self._pool(key, target, ders, entry, {**options, "tried": reason})
        return None


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _log_error(body: bytes) -> str:
    """The log's own reason, if its 4xx/5xx body is RFC 6962-style JSON ``{"error": ...}``, kept short."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return ""
    message = document.get("error") if isinstance(document, dict) else None
    return f" ({str(message).splitlines()[0][:120]})" if message else ""


def log_line(endpoint: str, outcome: LogOutcome) -> None:
    if outcome.sct is not None:
        log.info(
            "ct.submit endpoint=%s log=%r operator=%r outcome=sct attempts=%d seconds=%.3f timestamp=%d",
            endpoint, outcome.log.description, outcome.log.operator, outcome.attempts, outcome.seconds,
            outcome.sct.sct.timestamp,
        )  # fmt: skip
    else:
        log.warning(
            "ct.submit endpoint=%s log=%r operator=%r outcome=failed attempts=%d seconds=%.3f error=%r",
            endpoint, outcome.log.description, outcome.log.operator, outcome.attempts, outcome.seconds, outcome.error,
        )  # fmt: skip


__all__ = ["CtSubmitter", "InFlight", "LogOutcome", "Obtained", "Target"]
