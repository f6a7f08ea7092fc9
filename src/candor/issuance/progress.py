"""Stages 2-4 of the cycle: sign the precertificate, build and lint the final TBS, sign the final certificate.

Each stage signs bytes stored by the stage before it and then stores its own result, moving the issuance
record forward with a conditional update (``state = old``), so that two processes resuming the same
issuance never both advance it: the loser re-reads what the winner stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from candor import signing
from candor.audit import AuditLog, PreparedEvent
from candor.clock import Clock
from candor.errors import CandorError, ErrorKind
from candor.issuance.ct import FinalQueue, ObtainedScts, RecordingSctSource, SctSource
from candor.issuance.issuers import IssuerContext, IssuerResolver
from candor.lint import kind_for
from candor.policy.names import Identifier, rate_limit_key
from candor.storage import Database, issuance_sql, orders
from candor.storage.models_issuance import Issuance, Order
from candor.storage.repositories import certificate_values

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """An issuance as far as it has got, carried in memory between stages and rebuilt from storage on resume."""

    issuance_id: int
    order_id: int
    profile: str
    serial_id: int
    serial_hex: str
    issuer: IssuerContext
    state: str
    precert_tbs: bytes
    names: tuple[tuple[str, str], ...]  # the order's identifiers, (type, value)
    scts: bytes | None = None  # the SCT list obtained for the precertificate, once stored
    final_tbs: bytes | None = None
    stored: dict[str, x509.Certificate] = field(default_factory=dict)  # kind -> certificate


def load_progress(session: Session, issuance_id: int, resolver: IssuerResolver) -> Progress:
    issuance = session.get(Issuance, issuance_id)
    if issuance is None:
        raise CandorError(ErrorKind.NOT_FOUND, f"issuance {issuance_id} does not exist")
    if issuance.state == "failed":
        raise CandorError(ErrorKind.CONFLICT, f"order {issuance.order_id} failed: {issuance.error}")
    order = session.get(Order, issuance.order_id)
    assert order is not None
    progress = Progress(
        issuance_id=issuance.id,
        order_id=issuance.order_id,
        profile=issuance.profile,
        serial_id=issuance.serial_id,
        serial_hex=issuance.serial.serial_hex,
        issuer=resolver.by_id(session, issuance.serial.issuer_id),
        state=issuance.state,
        precert_tbs=issuance.precert_tbs,
        names=tuple(orders.decode_identifiers(order.identifiers)),
        scts=issuance.scts,
        final_tbs=issuance.final_tbs,
    )
    for kind in ("precertificate", "certificate"):
        der = orders.find_certificate_der(session, issuance.serial_id, kind)
        if der is not None:
            progress.stored[kind] = x509.load_der_x509_certificate(der)
    return progress


@dataclass(frozen=True)
class _Signed:
    """A certificate a stage signed, with its checked ``certificates`` row."""

    kind: str
    certificate: x509.Certificate
    der: bytes
    values: dict[str, object]
    event: PreparedEvent  # its certificate.sign audit event


class Stages:
    def __init__(
        self,
        *,
        db: Database,
        resolver: IssuerResolver,
        clock: Clock,
        audit: AuditLog,
        actor: str,
        sct_source: SctSource | None,
        on_phase: Callable[[str, int], None],
        lint_final: bool = False,
    ) -> None:
        self.db = db
        self.resolver = resolver
        self.clock = clock
        self.audit = audit
        self.actor = actor
        self.sct_source = sct_source
        self.on_phase = on_phase
        self.lint_final = lint_final

    def advance(self, progress: Progress) -> x509.Certificate:
        """Run the remaining stages; return the final certificate."""
        if progress.state == "intent":
            self.on_phase("intent", progress.order_id)
            self._precertificate(progress)
            self.on_phase("precertificate", progress.order_id)
        if progress.state == "precertificate":
            self._final_intent(progress)
        if progress.state == "final-intent":
            self._final(progress)
        return progress.stored["certificate"]

    def _precertificate(self, progress: Progress) -> None:
        token = signing.token_for_stored_tbs(progress.precert_tbs, progress.issuer.algorithm)
        precert = signing.sign(token, progress.issuer.key(), issuer_key=progress.issuer.info.public_key)
        signed = self._checked(progress, "precertificate", precert)  # before the write lock
        with self.db.connection() as connection:
            moved = self._move(connection, progress, "intent", "precertificate")
            if moved:
                self._store(connection, progress, signed)
        if not moved:
            self._reload(progress)

    def _final_intent(self, progress: Progress) -> None:
        issuer = progress.issuer
        scts: bytes | None = None
        obtained: ObtainedScts | None = None
        if isinstance(self.sct_source, RecordingSctSource):  # its audit event goes into the final intent's transaction
            obtained = self.sct_source.obtain_unrecorded(progress.stored["precertificate"], issuer.certificate)
            scts = obtained.sct_list
        elif self.sct_source is not None:
            scts = self.sct_source.obtain(progress.stored["precertificate"], issuer.certificate)
        elif not issuer.private:
            raise CandorError(ErrorKind.POLICY, "a publicly trusted issuer needs CT: no SCT source is configured")
        try:
            # BR 4.3.1.2: the precertificate's TBS was linted; the final TBS is admitted by the technical control
            # that it corresponds to it (RFC 6962), instead of a second pkilint run over the same content.
            token = signing.corresponding_final(
                progress.precert_tbs,
                signing.final_tbs_from_precertificate(progress.precert_tbs, scts),
                scts,
                algorithm=issuer.algorithm,
            )
            checked: dict[str, object] = {"checked": "corresponds to the linted precertificate (BR 4.3.1.2, RFC 6962)"}
            if self.lint_final:  # and pkilint on the final certificate itself, before anything is stored or signed
                token = signing.prepare_tbs(
                    token.tbs, algorithm=issuer.algorithm, kind=kind_for(progress.profile, False),
                    what=f"certificate for order {progress.order_id}", allow_local_urls=issuer.private,
                )  # fmt: skip
                assert token.report is not None
                checked["checked"] = f"{checked['checked']}; linted"
                checked["lint_warnings"] = [str(w) for w in token.report.warnings]
            event = self._event(
                "issuance.final_intent", progress,
                tbs_sha256=token.tbs_sha256, sct_list_bytes=len(scts) if scts else 0, **checked,
            )  # fmt: skip
            with self.db.connection() as connection:
                moved = self._move(
                    connection, progress, "precertificate", "final-intent",
                    scts=scts, final_tbs=token.tbs, final_tbs_sha256=token.tbs_sha256,
                )  # fmt: skip
                if moved:
                    if obtained is not None:
                        obtained.record(connection, sequenced=self.db.audit_sequenced)
                    self._append(connection, event)
        except BaseException:
            if obtained is not None:  # the precertificate is in the logs: say so, though this stage failed
                self._record_apart(obtained)
            raise
        if moved:
            progress.final_tbs, progress.scts = token.tbs, scts
        else:
            if obtained is not None:  # another process stored its own SCTs: these were obtained all the same
                self._record_apart(obtained)
            self._reload(progress)

    def _record_apart(self, obtained: ObtainedScts) -> None:
        """The CT submission's audit event in a transaction of its own, where the final intent's did not take it;
        a failure is logged, not raised: the signer audits its own stages, this record is the operator's."""
        try:
            with self.db.session() as session:
                obtained.record(session)
        except CandorError as exc:
            log.warning("ct.submit audit event not written: %s", exc.message)

    def _final(self, progress: Progress) -> None:
        """Sign the stored final TBS; in one transaction the certificate is stored, the order becomes valid, the
        names count for the rate limits and, with SCTs, the certificate's debt to their logs is queued."""
        assert progress.final_tbs is not None
        token = signing.token_for_stored_tbs(progress.final_tbs, progress.issuer.algorithm)
        certificate = signing.sign(token, progress.issuer.key(), issuer_key=progress.issuer.info.public_key)
        signed = self._checked(progress, "certificate", certificate)  # before the write lock
        keys = sorted({rate_limit_key(Identifier(kind, value)) for kind, value in progress.names})  # type: ignore[arg-type]
        now = self.clock.now()
        with self.db.connection() as connection:
            moved = self._move(connection, progress, "final-intent", "complete")
            if moved:
                issuance_sql.finish_order(connection, progress.order_id, status="valid", now=now)
                issuance_sql.record_issued_names(connection, progress.issuance_id, keys, now=now)
                self._store(connection, progress, signed)
                if progress.scts and isinstance(self.sct_source, FinalQueue):
                    self.sct_source.queue_final(
                        connection, serial_id=progress.serial_id, certificate_der=signed.der, scts=progress.scts,
                        now=now,
                    )  # fmt: skip
        if not moved:
            self._reload(progress)

    # -- helpers --------------------------------------------------------------------------------------
    def _move(self, connection: Connection, progress: Progress, old: str, new: str, **values: object) -> bool:
        moved = issuance_sql.move_issuance(connection, progress.issuance_id, old, new, now=self.clock.now(), **values)
        if moved:
            progress.state = new
        return moved

    def _reload(self, progress: Progress) -> None:
        """Another process advanced this issuance first: continue from what it stored."""
        with self.db.session() as session:
            fresh = load_progress(session, progress.issuance_id, self.resolver)
        progress.state, progress.final_tbs, progress.stored = fresh.state, fresh.final_tbs, fresh.stored
        progress.scts = fresh.scts

    def _checked(self, progress: Progress, kind: str, certificate: x509.Certificate) -> _Signed:
        """A signed certificate's ``certificates`` row, checked (its serial, its issuer, the poison exactly on a
        precertificate), and its audit event, made before the transaction that stores them: parsing, hashing and
        serialising under the write lock would hold everyone else's transactions for the time it takes."""
        der = certificate.public_bytes(Encoding.DER)
        values = certificate_values(
            serial_id=progress.serial_id, serial_hex=progress.serial_hex,
            issuer_subject_der=progress.issuer.subject_der, kind=kind, der=der, created_at=self.clock.now(),
        )  # fmt: skip
        event = self._event(
            "certificate.sign", progress, kind=kind, fingerprint_sha256=values["fingerprint_sha256"], der=der.hex()
        )
        return _Signed(kind, certificate, der, values, event)

    def _store(self, connection: Connection, progress: Progress, signed: _Signed) -> None:
        """Store a checked certificate and its audit event."""
        issuance_sql.store_certificate(connection, signed.values, serial_hex=progress.serial_hex)
        progress.stored[signed.kind] = signed.certificate
        self._append(connection, signed.event)

    def _event(self, action: str, progress: Progress, **details: object) -> PreparedEvent:
        """A stage's audit event, prepared outside its transaction (:meth:`AuditLog.prepare`)."""
        return self.audit.prepare(
            actor=self.actor,
            action=action,
            subject=f"order {progress.order_id}",
            outcome="success" if action == "certificate.sign" else "info",
            details={"issuer": progress.issuer.name, "serial": progress.serial_hex, **details},
            dialect=self.db.engine.dialect,
        )

    def _append(self, connection: Connection, event: PreparedEvent) -> None:
        self.audit.append(connection, event, sequenced=self.db.audit_sequenced)
