"""The signer: the only code that uses a CA key for subscriber certificates (DESIGN.md, the issuance cycle).

``finalize(order_id, csr)`` re-checks, from storage and on its own, everything issuance rests on, then runs
the cycle, writing each stage before the next begins:

1. intent: serial reserved (UNIQUE per issuer) and the linted precertificate TBS stored, in one transaction;
2. precertificate: the stored TBS signed and stored; from here the serial counts as issued (BR 7.1.2.9);
3. SCTs obtained (or none, on a private issuer), the final TBS built from the precertificate's at the DER
   level, linted and stored;
4. final certificate: the stored TBS signed and stored; the order becomes valid.

Every signature signs stored, linted bytes, so a retry after a crash re-signs the same TBS and can never
produce a second, different certificate for one (issuer, serial). ``finalize`` on an order already under
way resumes it; ``reconcile()`` resumes everything at start-up.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.orm import Session

from candor import signing
from candor.audit import AuditLog
from candor.clock import Clock
from candor.errors import CandorError, ErrorKind
from candor.issuance.authz import AuthorizationFacts, lookup_values, require_authorized
from candor.issuance.csr import ParsedCsr, parse_csr
from candor.issuance.ct import SctSource
from candor.issuance.issuers import IssuerContext, IssuerResolver
from candor.lint import kind_for
from candor.policy.dated import rules_at
from candor.policy.keys import check_subscriber_key
from candor.policy.names import Identifier, check_common_name, check_identifiers
from candor.profiles import SubscriberRequest, precertificate, subscriber_certificate
from candor.signing.der import assemble_certificate
from candor.storage import Database, orders, repositories
from candor.storage.models import SerialRecord
from candor.storage.models_issuance import Issuance, Order

log = logging.getLogger(__name__)
Phase = Callable[[str, int], None]  # (stage reached, order id): observability and fault-injection hook


@dataclass(frozen=True)
class IssuanceSettings:
    base_url: str  # http base of CRL and OCSP URLs baked into certificates
    validity: timedelta = timedelta(days=90)
    backdate: timedelta = timedelta(0)
    ocsp_urls: bool = False


@dataclass(frozen=True)
class IssuedChain:
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # the issuing CA upward, without the root

    def pem(self) -> bytes:
        return b"".join(c.public_bytes(Encoding.PEM) for c in (self.certificate, *self.chain))


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
    ) -> None:
        self.db = db
        self.issuers = issuers
        self.clock = clock
        self.settings = settings
        self.sct_source = sct_source
        self.actor = actor
        self.audit = AuditLog(clock)
        self.on_phase = on_phase or (lambda _stage, _order: None)

    # -- entry points ---------------------------------------------------------------------------------
    def finalize(self, order_id: int, csr: bytes) -> IssuedChain:
        parsed = parse_csr(csr)  # a malformed request is refused before anything is written
        with self.db.session() as session:
            order = session.get(Order, order_id)
            if order is None:
                raise CandorError(ErrorKind.NOT_FOUND, f"order {order_id} does not exist")
            existing = orders.issuance_for_order(session, order_id)
        if existing is not None:
            self._same_key(existing, parsed)
            return self._resume(existing.id)
        try:
            issuance_id = self._begin(order_id, parsed)
        except CandorError as exc:
            self._refused(order_id, exc)
            raise
        return self._resume(issuance_id)

    def reconcile(self) -> list[str]:
        """Resume every issuance a crash interrupted; put orders claimed but never started back to ready."""
        notes: list[str] = []
        with self.db.session() as session:
            pending = [i.id for i in orders.unfinished_issuances(session)]
            stale = orders.release_stale_orders(session, older_than=self.clock.now() - timedelta(minutes=10))
        notes += [f"order {order_id}: claimed but never started; ready again" for order_id in stale]
        for issuance_id in pending:
            try:
                chain = self._resume(issuance_id)
                notes.append(f"issuance {issuance_id}: completed, serial {chain.certificate.serial_number:x}")
            except CandorError as exc:
                notes.append(f"issuance {issuance_id}: left at its last stage ({exc.message})")
        for note in notes:
            self._event("issuance.reconcile", note, "info")
        return notes

    # -- stage 1: checks and intent -------------------------------------------------------------------
    def _begin(self, order_id: int, parsed: ParsedCsr) -> int:
        now = self.clock.now()
        with self.db.session() as session:
            order = orders.claim_order(session, order_id, now=now)
            if order is None:
                current = session.get(Order, order_id)
                status = current.status if current is not None else "missing"
                raise CandorError(ErrorKind.CONFLICT, f"order {order_id} is not ready for finalization ({status})")
        try:
            with self.db.session() as session:
                order = session.get(Order, order_id)
                assert order is not None
                issuer = self.issuers.for_order(session, order, now=now, with_ct=self.sct_source is not None)
                identifiers = self._check_request(session, order, parsed, issuer, now=now)
                token, serial = self._intent_token(order, parsed, identifiers, issuer, now=now)
                self._store_intent(session, order, issuer, token, serial, now=now)
                return orders.issuance_for_order(session, order_id).id  # type: ignore[union-attr]
        except CandorError as exc:
            with self.db.session() as session:
                failed = session.get(Order, order_id)
                if failed is not None and failed.status == "processing":
                    orders.finish_order(session, failed, status="invalid", now=self.clock.now(), error=exc.message)
            raise

    def _check_request(
        self, session: Session, order: Order, parsed: ParsedCsr, issuer: IssuerContext, *, now: datetime
    ) -> tuple[Identifier, ...]:
        """Everything legitimacy rests on, read from storage, whatever the caller already checked."""
        wanted = {(i.type, i.value) for i in parsed.identifiers}
        ordered = set(orders.decode_identifiers(order.identifiers))
        if wanted != ordered:
            raise CandorError(ErrorKind.POLICY, "RFC 8555 7.4: the request's names differ from the order's")
        check_subscriber_key(parsed.spki_der, is_blocked=lambda digest: orders.is_key_blocked(session, digest))
        identifiers = parsed.identifiers
        check_identifiers(identifiers, now=now)
        check_common_name(parsed.common_name, identifiers)
        rules = rules_at(now)
        facts = [
            AuthorizationFacts(
                id=a.id,
                identifier_type=a.identifier_type,
                value=a.identifier_value,
                status=a.status,
                method=a.method,
                validated_at=a.validated_at,
                expires_at=a.expires_at,
            )
            for a in orders.candidate_authorizations(
                session, account_id=order.account_id, values=lookup_values(identifiers)
            )
        ]
        require_authorized(
            identifiers,
            facts,
            now=now,
            reuse=timedelta(days=rules.dcv_reuse_days),
            methods=rules.allowed_validation_methods,
            private_issuer=issuer.private,
        )
        return identifiers

    def _intent_token(
        self,
        order: Order,
        parsed: ParsedCsr,
        identifiers: tuple[Identifier, ...],
        issuer: IssuerContext,
        *,
        now: datetime,
    ) -> tuple[signing.SigningToken, int]:
        rules = rules_at(now)
        serial = random_serial()
        public_key = serialization.load_der_public_key(parsed.spki_der)
        request = SubscriberRequest(
            public_key=public_key,  # type: ignore[arg-type]
            dns_names=tuple(i.value for i in identifiers if i.type == "dns"),
            ip_addresses=tuple(ipaddress.ip_address(i.value) for i in identifiers if i.type == "ip"),
            level=order.profile,  # type: ignore[arg-type]
            common_name=parsed.common_name,
            validity=min(self.settings.validity, timedelta(days=rules.max_validity_days)),
        )
        shard = serial % issuer.crl_shards
        template = subscriber_certificate(
            request,
            issuer=issuer.info,
            serial=serial,
            now=now,
            max_validity=timedelta(days=rules.max_validity_days),
            backdate=self.settings.backdate,
            crl_url=f"{self.settings.base_url}/crl/{issuer.name}/{shard}.crl",
            ocsp_url=f"{self.settings.base_url}/ocsp/{issuer.name}" if self.settings.ocsp_urls else None,
        )
        token = signing.prepare(
            precertificate(template),
            algorithm=issuer.algorithm,
            kind=kind_for(order.profile, True),
            what=f"precertificate for order {order.id}",
            allow_local_urls=issuer.private,
        )
        return token, serial

    def _store_intent(
        self,
        session: Session,
        order: Order,
        issuer: IssuerContext,
        token: signing.SigningToken,
        serial: int,
        *,
        now: datetime,
    ) -> None:
        record = repositories.reserve_serial(
            session, issuer=issuer.record, serial=serial, created_at=now, order_ref=str(order.id)
        )
        orders.add_issuance(
            session,
            serial=record,
            order=order,
            profile=order.profile,
            precert_tbs=token.tbs,
            precert_tbs_sha256=token.tbs_sha256,
            now=now,
        )
        self._event(
            "issuance.intent",
            f"order {order.id}",
            "info",
            session=session,
            issuer=issuer.name,
            serial=record.serial_hex,
            tbs_sha256=token.tbs_sha256,
            lint_warnings=[str(w) for w in token.report.warnings] if token.report else [],
        )

    # -- stages 2-4 -----------------------------------------------------------------------------------
    def _resume(self, issuance_id: int) -> IssuedChain:
        with self.db.session() as session:
            issuance = session.get(Issuance, issuance_id)
            assert issuance is not None
            order = session.get(Order, issuance.order_id)
            assert order is not None
            issuer = self.issuers.by_id(session, issuance.serial.issuer_id)
            state = issuance.state
        if state == "failed":
            raise CandorError(ErrorKind.CONFLICT, f"order {order.id} failed: {issuance.error}")
        if state == "intent":
            self.on_phase("intent", order.id)
            self._sign_precertificate(issuance, issuer)
            state = "precertificate"
            self.on_phase("precertificate", order.id)
        if state == "precertificate":
            self._final_intent(issuance_id, order, issuer)
            state = "final-intent"
        if state == "final-intent":
            self._sign_final(issuance_id, issuer)
        return self._chain(issuance_id, issuer)

    def _sign_precertificate(self, issuance: Issuance, issuer: IssuerContext) -> None:
        token = signing.token_for_stored_tbs(issuance.precert_tbs, issuer.algorithm)
        precert = signing.sign(token, issuer.key())
        with self.db.session() as session:
            stored = session.get(Issuance, issuance.id)
            assert stored is not None
            if stored.state == "intent":
                serial = session.get(SerialRecord, stored.serial_id)
                assert serial is not None
                repositories.add_certificate(
                    session, serial_record=serial, kind="precertificate", der=_der(precert), created_at=self.clock.now()
                )
                stored.state = "precertificate"
                stored.updated_at = self.clock.now()
                self._signed(session, "precertificate", stored, precert)

    def _final_intent(self, issuance_id: int, order: Order, issuer: IssuerContext) -> None:
        with self.db.session() as session:
            issuance = session.get(Issuance, issuance_id)
            assert issuance is not None
            precert_der = orders.certificate_der(session, issuance.serial_id, "precertificate")
        scts: bytes | None = None
        if self.sct_source is not None:
            scts = self.sct_source.obtain(x509.load_der_x509_certificate(precert_der), issuer.certificate)
        elif not issuer.private:
            raise CandorError(ErrorKind.POLICY, "a publicly trusted issuer needs CT: no SCT source is configured")
        final_tbs = signing.final_tbs_from_precertificate(issuance.precert_tbs, scts)
        token = signing.prepare_tbs(
            final_tbs,
            algorithm=issuer.algorithm,
            kind=kind_for(order.profile, False),
            what=f"certificate for order {order.id}",
            allow_local_urls=issuer.private,
        )
        with self.db.session() as session:
            stored = session.get(Issuance, issuance_id)
            assert stored is not None
            if stored.state == "precertificate":
                stored.scts = scts
                stored.final_tbs = token.tbs
                stored.final_tbs_sha256 = token.tbs_sha256
                stored.state = "final-intent"
                stored.updated_at = self.clock.now()
                self._event(
                    "issuance.final_intent",
                    f"order {order.id}",
                    "info",
                    session=session,
                    tbs_sha256=token.tbs_sha256,
                    scts=len(scts) if scts else 0,
                )

    def _sign_final(self, issuance_id: int, issuer: IssuerContext) -> None:
        with self.db.session() as session:
            issuance = session.get(Issuance, issuance_id)
            assert issuance is not None and issuance.final_tbs is not None
            final_tbs = issuance.final_tbs
        certificate = signing.sign(signing.token_for_stored_tbs(final_tbs, issuer.algorithm), issuer.key())
        with self.db.session() as session:
            stored = session.get(Issuance, issuance_id)
            assert stored is not None
            if stored.state != "final-intent":
                return
            serial = session.get(SerialRecord, stored.serial_id)
            assert serial is not None
            repositories.add_certificate(
                session, serial_record=serial, kind="certificate", der=_der(certificate), created_at=self.clock.now()
            )
            stored.state = "complete"
            stored.updated_at = self.clock.now()
            order = session.get(Order, stored.order_id)
            assert order is not None
            orders.finish_order(session, order, status="valid", now=self.clock.now())
            self._signed(session, "certificate", stored, certificate)

    def _chain(self, issuance_id: int, issuer: IssuerContext) -> IssuedChain:
        with self.db.session() as session:
            issuance = session.get(Issuance, issuance_id)
            assert issuance is not None
            der = orders.certificate_der(session, issuance.serial_id, "certificate")
        return IssuedChain(x509.load_der_x509_certificate(der), issuer.chain)

    # -- helpers --------------------------------------------------------------------------------------
    def _same_key(self, issuance: Issuance, parsed: ParsedCsr) -> None:
        precert = x509.load_der_x509_certificate(_der_from_tbs_holder(issuance))
        if hashlib.sha256(_spki(precert)).hexdigest() != parsed.spki_sha256:
            raise CandorError(ErrorKind.CONFLICT, f"order {issuance.order_id} is already being issued for another key")

    def _refused(self, order_id: int, exc: CandorError) -> None:
        self._event("issuance.refused", f"order {order_id}", "failure", reason=exc.message, kind=exc.kind.value)

    def _signed(self, session: Session, what: str, issuance: Issuance, certificate: x509.Certificate) -> None:
        self._event(
            "certificate.sign",
            f"order {issuance.order_id}",
            "success",
            session=session,
            kind=what,
            serial=issuance.serial.serial_hex,
            fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex(),
            der=_der(certificate).hex(),
        )

    def _event(
        self, action: str, subject: str, outcome: str, *, session: Session | None = None, **details: object
    ) -> None:
        if session is not None:
            self.audit.record(
                session, actor=self.actor, action=action, subject=subject, outcome=outcome, details=details
            )
            return
        with self.db.session() as own:
            self.audit.record(own, actor=self.actor, action=action, subject=subject, outcome=outcome, details=details)


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def _spki(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _der_from_tbs_holder(issuance: Issuance) -> bytes:
    """A parseable certificate around the stored precertificate TBS, to read its key (not to trust it)."""
    return assemble_certificate(issuance.precert_tbs, b"\x00")


__all__ = ["IssuanceSettings", "IssuedChain", "Signer"]
