"""Stages 2-4 of the cycle: sign the precertificate, build and lint the final TBS, sign the final certificate.

Each stage signs bytes stored by the stage before it and then stores its own result, moving the issuance
record forward with a conditional update (``state = old``), so that two processes resuming the same
issuance never both advance it: the loser re-reads what the winner stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import update
from sqlalchemy.orm import Session

from candor import signing
from candor.audit import AuditLog
from candor.clock import Clock
from candor.errors import CandorError, ErrorKind
from candor.issuance.ct import SctSource
from candor.issuance.issuers import IssuerContext, IssuerResolver
from candor.storage import Database, orders, repositories
from candor.storage.models import SerialRecord
from candor.storage.models_issuance import Issuance, Order


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
    final_tbs: bytes | None = None
    stored: dict[str, x509.Certificate] = field(default_factory=dict)  # kind -> certificate


def load_progress(session: Session, issuance_id: int, resolver: IssuerResolver) -> Progress:
    issuance = session.get(Issuance, issuance_id)
    if issuance is None:
        raise CandorError(ErrorKind.NOT_FOUND, f"issuance {issuance_id} does not exist")
    if issuance.state == "failed":
        raise CandorError(ErrorKind.CONFLICT, f"order {issuance.order_id} failed: {issuance.error}")
    progress = Progress(
        issuance_id=issuance.id,
        order_id=issuance.order_id,
        profile=issuance.profile,
        serial_id=issuance.serial_id,
        serial_hex=issuance.serial.serial_hex,
        issuer=resolver.by_id(session, issuance.serial.issuer_id),
        state=issuance.state,
        precert_tbs=issuance.precert_tbs,
        final_tbs=issuance.final_tbs,
    )
    for kind in ("precertificate", "certificate"):
        der = orders.find_certificate_der(session, issuance.serial_id, kind)
        if der is not None:
            progress.stored[kind] = x509.load_der_x509_certificate(der)
    return progress


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
    ) -> None:
        self.db = db
        self.resolver = resolver
        self.clock = clock
        self.audit = audit
        self.actor = actor
        self.sct_source = sct_source
        self.on_phase = on_phase

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
        with self.db.session() as session:
            moved = self._move(session, progress, "intent", "precertificate")
            if moved:
                self._store(session, progress, "precertificate", precert)
        if not moved:
            self._reload(progress)

    def _final_intent(self, progress: Progress) -> None:
        issuer = progress.issuer
        scts: bytes | None = None
        if self.sct_source is not None:
            scts = self.sct_source.obtain(progress.stored["precertificate"], issuer.certificate)
        elif not issuer.private:
            raise CandorError(ErrorKind.POLICY, "a publicly trusted issuer needs CT: no SCT source is configured")
        # BR 4.3.1.2: the precertificate's TBS was linted; the final TBS is admitted by the technical control
        # that it corresponds to it (RFC 6962), instead of a second pkilint run over the same content.
        token = signing.corresponding_final(
            progress.precert_tbs,
            signing.final_tbs_from_precertificate(progress.precert_tbs, scts),
            scts,
            algorithm=issuer.algorithm,
        )
        with self.db.session() as session:
            moved = self._move(
                session, progress, "precertificate", "final-intent",
                scts=scts, final_tbs=token.tbs, final_tbs_sha256=token.tbs_sha256,
            )  # fmt: skip
            if moved:
                self._event(
                    session, "issuance.final_intent", progress,
                    tbs_sha256=token.tbs_sha256, sct_list_bytes=len(scts) if scts else 0,
                    checked="corresponds to the linted precertificate (BR 4.3.1.2, RFC 6962)",
                )  # fmt: skip
        if moved:
            progress.final_tbs = token.tbs
        else:
            self._reload(progress)

    def _final(self, progress: Progress) -> None:
        assert progress.final_tbs is not None
        token = signing.token_for_stored_tbs(progress.final_tbs, progress.issuer.algorithm)
        certificate = signing.sign(token, progress.issuer.key(), issuer_key=progress.issuer.info.public_key)
        with self.db.session() as session:
            moved = self._move(session, progress, "final-intent", "complete")
            if moved:
                order = session.get(Order, progress.order_id)
                assert order is not None
                orders.finish_order(session, order, status="valid", now=self.clock.now())
                orders.record_issued_names(session, order, issuance_id=progress.issuance_id, now=self.clock.now())
                self._store(session, progress, "certificate", certificate)  # its audit event last: see _store
        if not moved:
            self._reload(progress)

    # -- helpers --------------------------------------------------------------------------------------
    def _move(self, session: Session, progress: Progress, old: str, new: str, **values: object) -> bool:
        result = session.execute(
            update(Issuance)
            .where(Issuance.id == progress.issuance_id, Issuance.state == old)
            .values(state=new, updated_at=self.clock.now(), **values)
            .execution_options(synchronize_session=False)
        )
        moved: bool = result.rowcount == 1  # type: ignore[attr-defined]
        if moved:
            progress.state = new
        return moved

    def _reload(self, progress: Progress) -> None:
        """Another process advanced this issuance first: continue from what it stored."""
        with self.db.session() as session:
            fresh = load_progress(session, progress.issuance_id, self.resolver)
        progress.state, progress.final_tbs, progress.stored = fresh.state, fresh.final_tbs, fresh.stored

    def _store(self, session: Session, progress: Progress, kind: str, certificate: x509.Certificate) -> None:
        """Store a signed certificate and its audit event, the last statements of the stage's transaction: the
        event takes the audit chain's lock, held until commit, which every writer of every process waits for."""
        serial = session.get(SerialRecord, progress.serial_id)
        assert serial is not None
        der = certificate.public_bytes(Encoding.DER)
        repositories.add_certificate(session, serial_record=serial, kind=kind, der=der, created_at=self.clock.now())
        progress.stored[kind] = certificate
        self._event(
            session, "certificate.sign", progress,
            kind=kind, fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex(), der=der.hex(),
        )  # fmt: skip

    def _event(self, session: Session, action: str, progress: Progress, **details: object) -> None:
        self.audit.record(
            session,
            actor=self.actor,
            action=action,
            subject=f"order {progress.order_id}",
            outcome="success" if action == "certificate.sign" else "info",
            details={"issuer": progress.issuer.name, "serial": progress.serial_hex, **details},
        )
