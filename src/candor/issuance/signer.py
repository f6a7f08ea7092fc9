"""The signer: the only code that uses a CA key for subscriber certificates (DESIGN.md, the issuance cycle).

``finalize(order_id, csr)`` re-checks, from storage and on its own, everything issuance rests on, then runs
the cycle, writing each stage before the next begins:

1. intent: the order claimed, the serial reserved (UNIQUE per issuer) and the linted precertificate TBS
   stored, in one transaction;
2. precertificate: the stored TBS signed and stored; from here the serial counts as issued (BR 7.1.2.9);
3. SCTs obtained (or none, on a private issuer), the final TBS built from the precertificate's at the DER
   level, checked to correspond to the linted precertificate TBS (BR 4.3.1.2, RFC 6962) and stored;
4. final certificate: the stored TBS signed and stored; the order becomes valid.

Every signature signs stored bytes that were linted (or, for the final certificate, shown to correspond to
linted ones), so a retry after a crash re-signs the same TBS and can never produce a second, different
certificate for one (issuer, serial). ``finalize`` on an order already under way resumes it; ``reconcile()``
resumes everything at start-up. Stages 2-4 are in :mod:`.progress`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from candor import signing
from candor.audit import AuditLog
from candor.clock import Clock
from candor.errors import CandorError, ErrorKind
from candor.issuance.authz import AuthorizationFacts, lookup_values, require_authorized
from candor.issuance.csr import ParsedCsr, parse_csr
from candor.issuance.ct import SctSource
from candor.issuance.issuers import IssuerContext, IssuerResolver
from candor.issuance.progress import Progress, Stages, load_progress
from candor.lint import kind_for
from candor.policy.dated import CAA_MAX_AGE, rules_at
from candor.policy.keys import blocked_key, check_subscriber_key
from candor.policy.names import Identifier, check_common_name, check_identifiers
from candor.profiles import SubscriberRequest, precertificate, subscriber_certificate
from candor.revocation.crl.shards import shard_of, shard_url
from candor.signing.der import assemble_certificate
from candor.storage import Database, issuance_sql, orders, serial_to_hex
from candor.storage.issuance_sql import OrderFacts
from candor.timekeeping import ClockWatch, TrustedClock, require_trustworthy

log = logging.getLogger(__name__)
SERIAL_ATTEMPTS = 3
Phase = Callable[[str, int], None]  # (stage reached, order id): observability and fault-injection hook


@dataclass(frozen=True)
class IssuanceSettings:
    base_url: str  # http base of CRL and OCSP URLs baked into certificates
    validity: timedelta = timedelta(days=90)
    backdate: timedelta = timedelta(0)
    ocsp_urls: bool = False
    lint_final: bool = False  # pkilint on the final certificate too ([issuance] lint_final_certificate)


@dataclass(frozen=True)
class IssuedChain:
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # the issuing CA upward, without the root

    def pem(self) -> bytes:
        return b"".join(c.public_bytes(Encoding.PEM) for c in (self.certificate, *self.chain))


@dataclass(frozen=True)
class _Checked:
    """What the checks before the lint found: the issuer and the identifiers."""

    issuer: IssuerContext
    identifiers: tuple[Identifier, ...]


class _SerialTaken(Exception):
    """The drawn serial was already claimed under the issuer: roll the intent back and draw again."""


def random_serial() -> int:
    """128 bits from the CSPRNG (BR 7.1.2.7: at least 64), positive and below 2**159."""
    while True:
        serial = secrets.randbits(128)
        if serial.bit_length() > 64:
            return serial


class Signer:
    def __init__(
        self,
        *,
        db: Database,
        issuers: IssuerResolver,
        clock: Clock,
        settings: IssuanceSettings,
        sct_source: SctSource | None = None,
        actor: str = "signer",
        on_phase: Phase | None = None,
        clock_watch: ClockWatch | None = None,
    ) -> None:
        self.db = db
        # WS-08e: nothing is signed while the clock is not trustworthy (candor.timekeeping).
        self.clock_watch = clock_watch or TrustedClock()
        self.issuers = issuers
        self.clock = clock
        self.settings = settings
        self.sct_source = sct_source
        self.actor = actor
        self.audit = AuditLog(clock)
        self.stages = Stages(
            db=db,
            resolver=issuers,
            clock=clock,
            audit=self.audit,
            actor=actor,
            sct_source=sct_source,
            on_phase=on_phase or (lambda _stage, _order: None),
            lint_final=settings.lint_final,
        )

    # -- entry points ---------------------------------------------------------------------------------
    def finalize(self, order_id: int, csr: bytes) -> IssuedChain:
        require_trustworthy(self.clock_watch, f"order {order_id}")  # before the order is claimed: it stays ready
        parsed = parse_csr(csr)  # a malformed request is refused before anything is written
        now = self.clock.now()
        with self.db.reader() as connection, Session(bind=connection) as session:  # checks: read only
            order = issuance_sql.order_facts(connection, order_id)
            if order is None:
                raise CandorError(ErrorKind.NOT_FOUND, f"order {order_id} does not exist")
            existing = issuance_sql.issuance_id_for_order(connection, order_id)
            if existing is not None:
                progress = load_progress(session, existing, self.issuers)
                _require_same_key(progress.precert_tbs, order_id, parsed)
            else:
                checked = self._checked(connection, order, parsed, now=now)
        if existing is None:
            try:
                progress = self._begin(order, parsed, checked, now=now)
            except CandorError as exc:
                self._event("issuance.refused", f"order {order_id}", "failure", reason=exc.message, kind=exc.kind.value)
                raise
        return IssuedChain(self.stages.advance(progress), progress.issuer.chain)

    def reconcile(self) -> list[str]:
        """Resume every issuance a crash interrupted; put orders claimed but never started back to ready."""
        if not self.clock_watch.status().trustworthy:  # WS-08e: each is resumed by its next finalize instead
            return ["the clock is not trustworthy: unfinished issuances are left at their last stage"]
        notes: list[str] = []
        with self.db.session() as session:
            pending = [i.id for i in orders.unfinished_issuances(session)]
            stale = orders.release_stale_orders(session, older_than=self.clock.now() - timedelta(minutes=10))
        notes += [f"order {order_id}: claimed but never started; ready again" for order_id in stale]
        for issuance_id in pending:
            try:
                with self.db.session() as session:
                    progress = load_progress(session, issuance_id, self.issuers)
                certificate = self.stages.advance(progress)
                notes.append(f"issuance {issuance_id}: completed, serial {certificate.serial_number:x}")
            except CandorError as exc:
                notes.append(f"issuance {issuance_id}: left at its last stage ({exc.message})")
        for note in notes:
            self._event("issuance.reconcile", note, "info")
        return notes

    # -- stage 1: checks and intent -------------------------------------------------------------------
    def _checked(
        self, connection: Connection, order: OrderFacts, parsed: ParsedCsr, *, now: datetime
    ) -> _Checked | CandorError:
        """The issuer and the identifiers, if the order is ready and everything checks out; else the refusal
        (raised by :meth:`_begin`, which makes a claimed order invalid)."""
        if order.status != "ready":
            return CandorError(ErrorKind.CONFLICT, f"order {order.id} is not ready for finalization ({order.status})")
        try:
            issuer = self.issuers.for_order(connection, order, now=now, with_ct=self.sct_source is not None)
            identifiers = self._check_request(connection, order, parsed, issuer, now=now)
            return _Checked(issuer, identifiers)
        except CandorError as exc:
            return exc

    def _begin(
        self,
        order: OrderFacts,
        parsed: ParsedCsr,
        checked: _Checked | CandorError,
        *,
        now: datetime,
    ) -> Progress:
        """Lint the precertificate TBS outside any transaction (it takes milliseconds, and on SQLite every
        transaction holds the database's one write lock), then, in one transaction, claim the order, check
        everything again (an authorization may have been deactivated, a key blocked, the issuer revoked in the
        meantime), reserve the serial the TBS carries and store the intent."""
        try:
            if isinstance(checked, CandorError):
                raise checked
            issuer = checked.issuer
            for attempt in range(1, SERIAL_ATTEMPTS + 1):
                serial = random_serial()
                token = self._intent_token(order, parsed, checked.identifiers, issuer, serial=serial, now=now)
                try:
                    return self._store_intent(order, parsed, checked, token, serial, now=now)
                except _SerialTaken:  # with 128 random bits, a broken RNG more than bad luck: audited below
                    log.warning("serial collision under issuer %s (attempt %d); drawing again", issuer.name, attempt)
            raise CandorError(
                ErrorKind.CONFLICT, f"{SERIAL_ATTEMPTS} serials drawn for issuer {issuer.name!r} were all taken"
            )
        except CandorError as exc:
            # a refusal ends the order; a conflict or a part that could not run (UNAVAILABLE: the lint process,
            # the clock) leaves it ready for a retry
            if exc.kind not in (ErrorKind.CONFLICT, ErrorKind.UNAVAILABLE):
                self._fail_order(order.id, exc)
            raise

    def _check_request(
        self,
        connection: Connection,
        order: OrderFacts,
        parsed: ParsedCsr,
        issuer: IssuerContext,
        *,
        now: datetime,
        key_checked: bool = False,
    ) -> tuple[Identifier, ...]:
        """Everything legitimacy rests on, read from storage, whatever the caller already checked. With
        *key_checked* (the claim's second pass) the key's own checks (BR 6.1.5, 6.1.6, weak keys), which depend on
        nothing stored or dated, are not run again: only the blocked-key list is read again."""
        if {(i.type, i.value) for i in parsed.identifiers} != set(orders.decode_identifiers(order.identifiers)):
            raise CandorError(ErrorKind.BAD_CSR, "RFC 8555 7.4: the request's names differ from the order's")
        if not key_checked:
            check_subscriber_key(parsed.spki_der, is_blocked=partial(issuance_sql.key_blocked, connection))
        elif issuance_sql.key_blocked(connection, hashlib.sha256(parsed.spki_der).hexdigest()):
            raise blocked_key()
        identifiers = parsed.identifiers
        check_identifiers(identifiers, now=now, private=issuer.private)
        check_common_name(parsed.common_name, identifiers)
        rules = rules_at(now)
        candidates = issuance_sql.valid_authorizations(
            connection, account_id=order.account_id, values=lookup_values(identifiers)
        )
        facts = [
            AuthorizationFacts(
                id=a.id,
                identifier_type=a.identifier_type,
                value=a.identifier_value,
                status=a.status,
                method=a.method,
                validated_at=a.validated_at,
                expires_at=a.expires_at,
                caa_checked_at=a.caa_checked_at,
            )
            for a in candidates
        ]
        require_authorized(
            identifiers,
            facts,
            now=now,
            reuse=timedelta(days=rules.dcv_reuse_days),
            methods=rules.allowed_validation_methods,
            private_issuer=issuer.private,
            caa_max_age=None if issuer.private else CAA_MAX_AGE,
        )
        return identifiers

    def _intent_token(
        self,
        order: OrderFacts,
        parsed: ParsedCsr,
        identifiers: tuple[Identifier, ...],
        issuer: IssuerContext,
        *,
        serial: int,
        now: datetime,
    ) -> signing.SigningToken:
        max_validity = timedelta(days=rules_at(now).max_validity_days)
        request = SubscriberRequest(
            public_key=serialization.load_der_public_key(parsed.spki_der),  # type: ignore[arg-type]
            dns_names=tuple(i.value for i in identifiers if i.type == "dns"),
            ip_addresses=tuple(ipaddress.ip_address(i.value) for i in identifiers if i.type == "ip"),
            level=order.profile,  # type: ignore[arg-type]
            common_name=parsed.common_name,
            validity=min(self.settings.validity, max_validity),
        )
        template = subscriber_certificate(
            request,
            issuer=issuer.info,
            serial=serial,
            now=now,
            max_validity=max_validity,
            backdate=self.settings.backdate,
            crl_url=shard_url(self.settings.base_url, issuer.name, shard_of(serial, issuer.crl_shards)),
            ocsp_url=f"{self.settings.base_url}/ocsp/{issuer.name}" if self.settings.ocsp_urls else None,
        )
        token = signing.prepare(
            precertificate(template),
            algorithm=issuer.algorithm,
            kind=kind_for(order.profile, True),
            what=f"precertificate for order {order.id}",
            allow_local_urls=issuer.private,
        )
        return token

    def _store_intent(
        self,
        order: OrderFacts,
        parsed: ParsedCsr,
        checked: _Checked,
        token: signing.SigningToken,
        serial: int,
        *,
        now: datetime,
    ) -> Progress:
        serial_hex = serial_to_hex(serial)
        issuer = checked.issuer
        event = self.audit.prepare(
            actor=self.actor,
            action="issuance.intent",
            subject=f"order {order.id}",
            outcome="info",
            details={
                "issuer": issuer.name,
                "serial": serial_hex,
                "tbs_sha256": token.tbs_sha256,
                "lint_warnings": [str(w) for w in token.report.warnings] if token.report else [],
            },
            dialect=self.db.engine.dialect,
        )  # before the write lock: the transaction only inserts it
        with self.db.connection() as connection:
            if not issuance_sql.claim_order(connection, order.id, now=now):
                current = issuance_sql.order_facts(connection, order.id)
                status = current.status if current is not None else "missing"
                raise CandorError(ErrorKind.CONFLICT, f"order {order.id} is not ready for finalization ({status})")
            # re-checked at the moment of the claim, not at *now* (read before the lint and the wait for the write
            # lock): an authorization or a CAA check that expired meanwhile is refused (BR 3.2.2.8, 4.2.1)
            checked_at = max(now, self.clock.now())
            self.issuers.for_order(connection, order, now=checked_at, with_ct=self.sct_source is not None)
            self._check_request(connection, order, parsed, issuer, now=checked_at, key_checked=True)
            serial_id = issuance_sql.reserve_serial(
                connection, issuer_id=issuer.id, serial_hex=serial_hex, order_ref=str(order.id), created_at=now
            )
            if serial_id is None:
                raise _SerialTaken  # leaves the block: the claim is rolled back with everything else
            issuance_id = issuance_sql.insert_issuance(
                connection, serial_id=serial_id, order=order, precert_tbs=token.tbs,
                precert_tbs_sha256=token.tbs_sha256, now=now,
            )  # fmt: skip
            self.audit.append(connection, event, sequenced=self.db.audit_sequenced)
        return Progress(
            issuance_id=issuance_id,
            order_id=order.id,
            profile=order.profile,
            serial_id=serial_id,
            serial_hex=serial_hex,
            issuer=issuer,
            state="intent",
            precert_tbs=token.tbs,
            names=tuple(orders.decode_identifiers(order.identifiers)),
        )

    # -- helpers --------------------------------------------------------------------------------------
    def _fail_order(self, order_id: int, exc: CandorError) -> None:
        """A refusal after the order was claimed: the order becomes invalid (RFC 8555 7.1.6)."""
        now = self.clock.now()
        with self.db.session() as session:
            connection = session.connection()
            if issuance_sql.claim_order(connection, order_id, now=now):
                error = json.dumps({"kind": exc.kind.value, "detail": exc.message})
                issuance_sql.finish_order(connection, order_id, status="invalid", now=now, error=error)

    def _event(self, action: str, subject: str, outcome: str, **details: object) -> None:
        with self.db.session() as session:
            self.audit.record(
                session, actor=self.actor, action=action, subject=subject, outcome=outcome, details=details
            )


def _require_same_key(precert_tbs: bytes, order_id: int, parsed: ParsedCsr) -> None:
    """A second finalization of an order under way must be for the same key."""
    precert = x509.load_der_x509_certificate(assemble_certificate(precert_tbs, b"\x00"))
    spki = precert.public_key().public_bytes(Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if spki != parsed.spki_der:
        raise CandorError(ErrorKind.CONFLICT, f"order {order_id} is already being issued for another key")


__all__ = ["IssuanceSettings", "IssuedChain", "Phase", "Signer", "random_serial"]
