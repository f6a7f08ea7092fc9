"""Rotation of delegated OCSP responder certificates (BR 7.1.2.8; RFC 6960 4.2.2.2.1).

A responder certificate carries id-pkix-ocsp-nocheck, so nothing can usefully revoke it: it is kept
short-lived and replaced, with a new key, once a fraction (half by default) of its validity has passed. The
new certificate is made exactly as the ceremony makes the first (the ``ocsp_responder`` profile, linted by
pkilint, signed through a single-use token, the signature checked against the issuer's certificate), stored
under the issuer's serials, and recorded; the old responder is retired (its responses stay valid until their
nextUpdate, which never passes its certificate's notAfter).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from candor import signing
from candor.audit import AuditLog
from candor.clock import Clock
from candor.keys import KeyAlgorithm, KeyStores
from candor.lint import CertificateKind
from candor.profiles import IssuerInfo, ocsp_responder
from candor.revocation.ocsp.settings import OcspSettings
from candor.storage import Database, repositories
from candor.storage.models import Issuer, KeyRecord, OcspResponder


def rotation_point(responder: OcspResponder, fraction: float) -> datetime:
    return responder.not_before + (responder.not_after - responder.not_before) * fraction


def rotate_due(
    db: Database, stores: KeyStores, clock: Clock, settings: OcspSettings, audit: AuditLog, *, actor: str
) -> list[str]:
    """Rotate every issuer's active responder that has reached its rotation point; the new key labels."""
    now = clock.now()
    rotated: list[str] = []
    with db.session() as session:
        due = [
            r
            for r in session.scalars(select(OcspResponder).where(OcspResponder.status == "active"))
            if now >= rotation_point(r, settings.responder_rotation_fraction)
        ]
        due_ids = [(r.id, r.issuer_id) for r in due]
    for responder_id, issuer_id in due_ids:
        # The key is recorded in its own transaction as soon as it exists: no key is ever unaccounted for.
        with db.session() as session:
            key_id = _new_key(session, stores, now, audit, actor, responder_id, issuer_id)
        with db.session() as session:
            rotated.append(_certify(session, stores, now, audit, actor, responder_id, key_id))
    return rotated


def _new_key(
    session: Session, stores: KeyStores, now: datetime, audit: AuditLog, actor: str, responder_id: int, issuer_id: int
) -> int:
    old = session.get(OcspResponder, responder_id)
    issuer = session.get(Issuer, issuer_id)
    assert old is not None and issuer is not None
    algorithm = KeyAlgorithm(old.key.algorithm)
    store = stores.get(old.key.store)
    count = session.scalar(select(func.count()).select_from(OcspResponder).where(OcspResponder.issuer_id == issuer_id))
    number = (count or 0) + 1
    while repositories.key_by_label(session, f"{issuer.name}-ocsp-{number}") is not None:
        number += 1
    label = f"{issuer.name}-ocsp-{number}"
    generated = store.generate(label, algorithm)
    spki = generated.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    key_record: KeyRecord = repositories.add_key(
        session,
        label=label,
        store=old.key.store,
        backend=store.backend_type,
        algorithm=algorithm.value,
        handle=generated.handle,
        public_key_der=spki,
        purpose="ocsp-responder",
        created_at=now,
    )
    audit.record(
        session, actor=actor, action="key.generate", subject=label, outcome="success",
        details={"store": old.key.store, "algorithm": algorithm.value, "spki_sha256": hashlib.sha256(spki).hexdigest()},
    )  # fmt: skip
    session.flush()
    return key_record.id


def _certify(
    session: Session, stores: KeyStores, now: datetime, audit: AuditLog, actor: str, responder_id: int, key_id: int
) -> str:
    old = session.get(OcspResponder, responder_id)
    key_record = session.get(KeyRecord, key_id)
    assert old is not None and key_record is not None
    issuer = session.get(Issuer, old.issuer_id)
    assert issuer is not None
    label = key_record.label
    issuer_certificate = x509.load_der_x509_certificate(issuer.certificate_der)
    old_certificate = x509.load_der_x509_certificate(old.certificate.der)
    public_key = serialization.load_der_public_key(key_record.public_key_der)
    validity = old_certificate.not_valid_after_utc - old_certificate.not_valid_before_utc + timedelta(seconds=1)
    template = ocsp_responder(
        subject=old_certificate.subject,
        public_key=public_key,  # type: ignore[arg-type]
        serial=_random_serial(),
        now=now,
        validity=min(validity, timedelta(days=90)),
        issuer=IssuerInfo(
            name=issuer_certificate.subject,
            public_key=issuer_certificate.public_key(),  # type: ignore[arg-type]
            not_after=issuer_certificate.not_valid_after_utc,
            certificate_url="",  # the responder profile carries no AIA and no CRLDP
            crl_url="",
        ),
    )
    issuer_algorithm = KeyAlgorithm(issuer.key.algorithm)
    token = signing.prepare(template, algorithm=issuer_algorithm, kind=CertificateKind.OCSP_RESPONDER, what=label)
    audit.record(
        session, actor=actor, action="certificate.sign.intent", subject=label, outcome="info",
        details={"tbs_sha256": token.tbs_sha256},
    )  # fmt: skip
    issuer_key = stores.get(issuer.key.store).load(issuer.key.handle, issuer_algorithm)
    certificate = signing.sign(token, issuer_key, issuer_key=issuer_certificate.public_key())  # type: ignore[arg-type]
    der = certificate.public_bytes(Encoding.DER)
    audit.record(
        session, actor=actor, action="certificate.sign", subject=label, outcome="success",
        details={"kind": CertificateKind.OCSP_RESPONDER.value, "serial": format(certificate.serial_number, "x"),
                 "tbs_sha256": token.tbs_sha256, "der": der.hex()},
    )  # fmt: skip
    serial = repositories.reserve_serial(session, issuer=issuer, serial=certificate.serial_number, created_at=now)
    stored = repositories.add_certificate(session, serial_record=serial, kind="certificate", der=der, created_at=now)
    repositories.add_ocsp_responder(session, issuer=issuer, key=key_record, certificate=stored, created_at=now)
    old.status = "retired"
    audit.record(
        session, actor=actor, action="ocsp.responder.rotate", subject=issuer.name, outcome="success",
        details={"retired": old.key.label, "new": label, "not_after": certificate.not_valid_after_utc.isoformat()},
    )  # fmt: skip
    return label


def _random_serial() -> int:
    """BR 7.1.2.8 (and 7.1.2.1 serialNumber): positive, non-sequential, 127 bits from the CSPRNG."""
    while True:
        serial = secrets.randbits(127)
        if serial.bit_length() > 64:
            return serial
