"""Revoking a certificate: the record that CRLs and OCSP answer from (BR 4.9, 7.2.2).

Revocation is by (issuer, serial) and applies to the serial, so a precertificate without a final certificate
is revoked just the same (BR 7.1.2.9: a precertificate is a binding intent to issue). A revocation is never
undone (BR 4.9.13: no suspension; no certificateHold). keyCompromise blocks the key for all future issuance
and revokes every other certificate for that key, under every issuer Candor operates.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from candor.audit import AuditLog
from candor.errors import CandorError, ErrorKind
from candor.revocation.crl.marks import mark_revoked
from candor.storage import orders, repositories, serial_from_hex
from candor.storage.models import CertificateRecord, Issuer, SerialRecord


class RevocationReason(IntEnum):
    """RFC 5280 5.3.1 CRLReason values a subscriber certificate may carry (BR 7.2.2)."""

    UNSPECIFIED = 0
    KEY_COMPROMISE = 1
    AFFILIATION_CHANGED = 3
    SUPERSEDED = 4
    CESSATION_OF_OPERATION = 5
    PRIVILEGE_WITHDRAWN = 9

    @property
    def rfc_name(self) -> str:
        first, *rest = self.name.lower().split("_")
        return first + "".join(word.capitalize() for word in rest)


def parse_reason(name: str) -> RevocationReason:
    by_name = {reason.rfc_name.lower(): reason for reason in RevocationReason}
    reason = by_name.get(name.strip().lower())
    if reason is None:
        allowed = ", ".join(r.rfc_name for r in RevocationReason)
        raise CandorError(
            ErrorKind.POLICY,
            f"BR 7.2.2: revocation reason {name!r} is not allowed (allowed: {allowed}; never certificateHold)",
        )
    return reason


def revoke(
    session: Session,
    *,
    audit: AuditLog,
    actor: str,
    issuer: Issuer,
    serial: int,
    reason: RevocationReason,
    now: datetime,
    revoked_at: datetime | None = None,
) -> list[str]:
    """Revoke (issuer, serial); return every serial revoked as a result, as "issuer:serialhex"."""
    record = repositories.serial_by_value(session, issuer, serial)
    if record is None or session.scalar(_has_certificate(record.id)) is None:
        raise CandorError(
            ErrorKind.NOT_FOUND, f"issuer {issuer.name!r} has issued no certificate with serial {serial:x}"
        )
    when = revoked_at or now
    if when > now:
        raise CandorError(ErrorKind.POLICY, "BR 7.2.2: a revocation date is never in the future")
    if when < now and reason is not RevocationReason.KEY_COMPROMISE:
        raise CandorError(ErrorKind.POLICY, "BR 7.2.2: only a keyCompromise revocation may be backdated")
    if record.status == "revoked" and not _upgrade_to_key_compromise(record, reason):
        raise CandorError(ErrorKind.CONFLICT, f"serial {record.serial_hex} under {issuer.name!r} is already revoked")
    revoked = [_mark(session, audit, actor, record, issuer, reason, when)]
    if reason is RevocationReason.KEY_COMPROMISE:
        revoked += _revoke_key(session, audit, actor, record, reason, when, now)
    return revoked


def _has_certificate(serial_id: int) -> Select[int]:
    return select(CertificateRecord.id).where(CertificateRecord.serial_id == serial_id).limit(1)


def _upgrade_to_key_compromise(record: SerialRecord, reason: RevocationReason) -> bool:
    """BR 7.2.2: a certificate revoked for another reason may later be marked keyCompromise."""
    return reason is RevocationReason.KEY_COMPROMISE and record.revocation_reason != RevocationReason.KEY_COMPROMISE


def _mark(
    session: Session,
    audit: AuditLog,
    actor: str,
    record: SerialRecord,
    issuer: Issuer,
    reason: RevocationReason,
    when: datetime,
) -> str:
    record.status = "revoked"
    record.revoked_at = when
    record.revocation_reason = int(reason)
    session.flush()
    mark_revoked(session, issuer, serial_from_hex(record.serial_hex))  # its CRL shard is stale (BR 4.9.7)
    audit.record(
        session,
        actor=actor,
        action="certificate.revoke",
        subject=f"{issuer.name}:{record.serial_hex}",
        outcome="success",
        details={"reason": reason.rfc_name, "revoked_at": when.isoformat()},
    )
    return f"{issuer.name}:{record.serial_hex}"


def _revoke_key(
    session: Session,
    audit: AuditLog,
    actor: str,
    record: SerialRecord,
    reason: RevocationReason,
    when: datetime,
    now: datetime,
) -> list[str]:
    """Block the compromised key and revoke every other certificate Candor issued for it."""
    digests = set(
        session.scalars(select(CertificateRecord.spki_sha256).where(CertificateRecord.serial_id == record.id))
    )
    revoked: list[str] = []
    for digest in sorted(d for d in digests if d):
        orders.block_key(
            session,
            spki_sha256=digest,
            reason="keyCompromise",
            source=f"revocation of {record.serial_hex}",
            created_at=now,
        )
        audit.record(
            session, actor=actor, action="key.block", subject=digest, outcome="success",
            details={"reason": "keyCompromise", "serial": record.serial_hex},
        )  # fmt: skip
        others = session.scalars(
            select(SerialRecord)
            .join(CertificateRecord, CertificateRecord.serial_id == SerialRecord.id)
            .where(CertificateRecord.spki_sha256 == digest, SerialRecord.id != record.id)
            .distinct()
        )
        for other in others:
            if other.status != "revoked" or _upgrade_to_key_compromise(other, reason):
                revoked.append(_mark(session, audit, actor, other, other.issuer, reason, when))
    return revoked
