"""Step 5 of ``candor ct audit``: Candor's certificates that a log promised to incorporate and has not.

An SCT is the log's promise to incorporate the entry within its maximum merge delay (RFC 6962 3). The promises
Candor holds are the SCTs embedded in its final certificates (each one for the precertificate) and the SCTs
the durable queue (``ct_submissions``) received for final certificates. ``ct_audit_seen`` records which of
Candor's records an audit found in which log, so the check reads no old entries again. Only unexpired
certificates of public issuers are checked: a private issuer's certificates carry no SCTs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from candor.ct.monitor.alerts import Alert, missing_alert
from candor.ct.monitor.reader import TreeHead
from candor.ct.submit.loglist import LogInfo
from candor.ct.submit.sct import SctError, embedded_scts
from candor.storage.models import CertificateRecord, Issuer, SerialRecord
from candor.storage.models_ct_audit import CtAuditSeen
from candor.storage.models_ct_submit import CtSubmission


def overdue(session: Session, log_info: LogInfo, head: TreeHead, now: datetime) -> list[Alert]:
    """Step 5: Candor's unexpired certificates with an SCT from this log older than the log's MMD, which no
    audit found in the log (RFC 6962 3)."""
    mmd = timedelta(seconds=log_info.mmd_seconds)
    seen = select(CtAuditSeen.certificate_id).where(CtAuditSeen.log_id == log_info.log_id)
    alerts: list[Alert] = []
    precertificate = aliased(CertificateRecord)
    embedded = session.execute(
        select(CertificateRecord.der, SerialRecord.serial_hex, Issuer.name)
        .join(
            precertificate,
            and_(precertificate.serial_id == CertificateRecord.serial_id, precertificate.kind == "precertificate"),
        )
        .join(SerialRecord, SerialRecord.id == CertificateRecord.serial_id)
        .join(Issuer, Issuer.id == SerialRecord.issuer_id)
        .where(
            CertificateRecord.kind == "certificate",
            CertificateRecord.not_after > now,
            Issuer.private.is_(False),
            precertificate.id.not_in(seen),
        )
    )
    for der, serial_hex, issuer in embedded:
        try:
            scts = embedded_scts(x509.load_der_x509_certificate(der))
        except (SctError, ValueError):
            continue
        for sct in scts:
            if sct.log_id == log_info.log_id and sct.time + mmd <= now:
                alerts.append(missing_alert(log_info, head, "precertificate", issuer, serial_hex, sct.time, mmd))
    cutoff = int((now - mmd).timestamp() * 1000)
    delivered = session.execute(
        select(CtSubmission.sct_timestamp, SerialRecord.serial_hex, Issuer.name)
        .join(
            CertificateRecord,
            and_(CertificateRecord.serial_id == CtSubmission.serial_id, CertificateRecord.kind == "certificate"),
        )
        .join(SerialRecord, SerialRecord.id == CtSubmission.serial_id)
        .join(Issuer, Issuer.id == SerialRecord.issuer_id)
        .where(
            CtSubmission.log_id == log_info.log_id,
            CtSubmission.done.is_(True),
            CtSubmission.sct_timestamp <= cutoff,
            CertificateRecord.not_after > now,
            CertificateRecord.id.not_in(seen),
        )
    )
    for timestamp, serial_hex, issuer in delivered:
        assert timestamp is not None  # done rows carry the SCT's timestamp
        moment = datetime.fromtimestamp(timestamp / 1000, tz=UTC)
        alerts.append(missing_alert(log_info, head, "certificate", issuer, serial_hex, moment, mmd))
    return alerts


__all__ = ["overdue"]
