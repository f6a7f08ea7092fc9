"""Reads and writes of keys, issuers, serials and certificates. Each function works in the caller's session.

Writes validate what the database cannot (that a certificate belongs to its key, serial and issuer), then
insert inside a SAVEPOINT so that a uniqueness conflict raises ``ErrorKind.CONFLICT`` and leaves the
caller's transaction usable. Lookups return ``None`` when nothing matches. Every ``created_at`` must be a
timezone-aware datetime (from the injected clock).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from candor.clock import ensure_utc
from candor.errors import CandorError, ErrorKind
from candor.policy.algorithms import algorithm_of
from candor.storage.dberrors import insert_unique
from candor.storage.models import (
    CERTIFICATE_KINDS,
    ISSUER_KINDS,
    KEY_BACKENDS,
    KEY_PURPOSES,
    CertificateRecord,
    Issuer,
    KeyRecord,
    OcspResponder,
    SerialRecord,
)
from candor.storage.serials import serial_to_hex

ISSUER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# The key purpose an issuer of each kind must use.
ISSUER_KEY_PURPOSE = {"root": "root-ca", "tls": "tls-ca", "tsa": "tsa-ca"}
# RFC 6962 3.1: the critical poison extension that marks a precertificate.
CT_POISON = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.3")


def _utc(moment: datetime) -> datetime:
    try:
        return ensure_utc(moment)
    except (ValueError, AttributeError):
        raise CandorError(ErrorKind.INTERNAL, "naive datetime refused: pass timezone-aware UTC times") from None


def _one_of(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise CandorError(ErrorKind.POLICY, f"{what} {value!r} is not allowed (allowed: {', '.join(allowed)})")


def _parse_certificate(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise CandorError(ErrorKind.POLICY, "not a DER X.509 certificate") from None


def _spki_der(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def add_key(
    session: Session,
    *,
    label: str,
    store: str,
    backend: str,
    algorithm: str,
    handle: str,
    public_key_der: bytes,
    purpose: str,
    created_at: datetime,
) -> KeyRecord:
    """Record a reference to a key held in key store *store*; the public key must match *algorithm*."""
    _one_of("key backend", backend, KEY_BACKENDS)
    _one_of("key purpose", purpose, KEY_PURPOSES)
    if not label or not store or not handle:
        raise CandorError(ErrorKind.POLICY, "a key needs a label, a store name and a handle")
    try:
        public_key = serialization.load_der_public_key(public_key_der)
    except (ValueError, TypeError):
        raise CandorError(ErrorKind.POLICY, f"key {label!r}: public key is not a DER SubjectPublicKeyInfo") from None
    found = algorithm_of(public_key)
    if found.value != algorithm:
        raise CandorError(ErrorKind.POLICY, f"key {label!r}: public key is {found.value}, not {algorithm}")
    canonical = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = KeyRecord(
        label=label,
        store=store,
        backend=backend,
        algorithm=algorithm,
        handle=handle,
        public_key_der=canonical,
        spki_sha256=hashlib.sha256(canonical).hexdigest(),
        purpose=purpose,
        created_at=_utc(created_at),
    )
    insert_unique(
        session,
        record,
        {
            "uq_keys_label": f"a key labelled {label!r}",
            "uq_keys_spki_sha256": f"a key with the public key of {label!r}",
        },
    )
    return record


def key_by_label(session: Session, label: str) -> KeyRecord | None:
    return session.scalars(select(KeyRecord).where(KeyRecord.label == label)).one_or_none()


def add_issuer(
    session: Session,
    *,
    name: str,
    kind: str,
    parent: Issuer | None,
    key: KeyRecord,
    certificate_der: bytes,
    created_at: datetime,
    private: bool = False,
    crl_shards: int = 16,
) -> Issuer:
    """Record a CA certificate; subject, SKI, fingerprint and validity are taken from the DER.

    Refused (``ErrorKind.POLICY``) unless the certificate's public key is *key*'s, the key's purpose fits
    *kind*, a root is self-issued with no parent, and any other issuer is issued by *parent*'s subject.
    """
    if not ISSUER_NAME.match(name):
        raise CandorError(
            ErrorKind.POLICY,
            f"issuer name {name!r} must be a slug: a-z, 0-9 and inner '-', at most 64 characters",
        )
    _one_of("issuer kind", kind, ISSUER_KINDS)
    if not 1 <= crl_shards <= 4096:
        raise CandorError(ErrorKind.POLICY, f"issuer {name!r}: crl_shards must be 1..4096")
    if key.purpose != ISSUER_KEY_PURPOSE[kind]:
        raise CandorError(
            ErrorKind.POLICY,
            f"issuer {name!r}: a {kind} issuer needs a {ISSUER_KEY_PURPOSE[kind]} key, not {key.purpose}",
        )
    certificate = _parse_certificate(certificate_der)
    if _spki_der(certificate) != key.public_key_der:
        raise CandorError(ErrorKind.POLICY, f"issuer {name!r}: the certificate is not for key {key.label!r}")
    issuer_der = certificate.issuer.public_bytes()
    subject_der = certificate.subject.public_bytes()
    if kind == "root":
        if parent is not None:
            raise CandorError(ErrorKind.POLICY, f"issuer {name!r}: a root has no parent")
        if issuer_der != subject_der:
            raise CandorError(ErrorKind.POLICY, f"issuer {name!r}: a root certificate must be self-issued")
    else:
        if parent is None:
            raise CandorError(ErrorKind.POLICY, f"issuer {name!r}: a {kind} issuer needs a parent")
        if issuer_der != parent.subject_der:
            raise CandorError(ErrorKind.POLICY, f"issuer {name!r}: the certificate was not issued by {parent.name!r}")
    try:
        ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        raise CandorError(
            ErrorKind.POLICY,
            f"issuer {name!r}: a CA certificate needs a subjectKeyIdentifier (RFC 5280 4.2.1.2)",
        ) from None
    record = Issuer(
        name=name,
        kind=kind,
        parent_id=parent.id if parent is not None else None,
        key_id=key.id,
        certificate_der=certificate_der,
        subject_der=subject_der,
        ski_hex=ski.hex(),
        fingerprint_sha256=hashlib.sha256(certificate_der).hexdigest(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        status="active",
        created_at=_utc(created_at),
        private=private,
        crl_shards=crl_shards,
    )
    insert_unique(
        session,
        record,
        {
            "uq_issuers_name": f"an issuer named {name!r}",
            "uq_issuers_fingerprint_sha256": f"an issuer with the certificate given for {name!r}",
        },
    )
    session.refresh(record)
    return record


def issuer_by_name(session: Session, name: str) -> Issuer | None:
    return session.scalars(select(Issuer).where(Issuer.name == name)).one_or_none()


def list_issuers(session: Session, *, kind: str | None = None) -> list[Issuer]:
    """All issuers (optionally of one kind), oldest first."""
    query = select(Issuer).order_by(Issuer.id)
    if kind is not None:
        query = query.where(Issuer.kind == kind)
    return list(session.scalars(query))


def reserve_serial(
    session: Session, *, issuer: Issuer, serial: int, created_at: datetime, order_ref: str | None = None
) -> SerialRecord:
    """Claim *serial* under *issuer* before signing; ``ErrorKind.CONFLICT`` if it is already taken.

    The claim is enforced by the database (UNIQUE(issuer_id, serial_hex)), so two processes can never
    both reserve one serial. After a conflict the caller's transaction is still usable.
    """
    serial_hex = serial_to_hex(serial)
    record = SerialRecord(
        issuer_id=issuer.id,
        serial_hex=serial_hex,
        order_ref=order_ref,
        status="reserved",
        created_at=_utc(created_at),
    )
    insert_unique(session, record, {"uq_serials_issuer_serial": f"serial {serial_hex} under issuer {issuer.name!r}"})
    session.refresh(record)
    return record


def serial_by_value(session: Session, issuer: Issuer, serial: int) -> SerialRecord | None:
    query = select(SerialRecord).where(
        SerialRecord.issuer_id == issuer.id, SerialRecord.serial_hex == serial_to_hex(serial)
    )
    return session.scalars(query).one_or_none()


def certificate_values(
    *, serial_id: int, serial_hex: str, issuer_subject_der: bytes, kind: str, der: bytes, created_at: datetime
) -> dict[str, object]:
    """The ``certificates`` row for *der*, checked first: the DER carries the reserved serial, names the serial's
    issuer, and carries the CT poison extension exactly when *kind* is "precertificate"."""
    _one_of("certificate kind", kind, CERTIFICATE_KINDS)
    certificate = _parse_certificate(der)
    if serial_to_hex(certificate.serial_number) != serial_hex:
        raise CandorError(ErrorKind.POLICY, f"certificate serial does not match reserved serial {serial_hex}")
    if certificate.issuer.public_bytes() != issuer_subject_der:
        raise CandorError(ErrorKind.POLICY, "certificate issuer name does not match the serial's issuer")
    poisoned = any(extension.oid == CT_POISON for extension in certificate.extensions)
    if poisoned != (kind == "precertificate"):
        raise CandorError(
            ErrorKind.POLICY, f"a {kind} {'must not' if poisoned else 'must'} carry the CT poison extension"
        )
    return {
        "serial_id": serial_id,
        "kind": kind,
        "der": der,
        "tbs_sha256": hashlib.sha256(certificate.tbs_certificate_bytes).hexdigest(),
        "fingerprint_sha256": hashlib.sha256(der).hexdigest(),
        "spki_sha256": hashlib.sha256(_spki_der(certificate)).hexdigest(),
        "not_before": certificate.not_valid_before_utc,
        "not_after": certificate.not_valid_after_utc,
        "created_at": _utc(created_at),
    }


def add_certificate(
    session: Session, *, serial_record: SerialRecord, kind: str, der: bytes, created_at: datetime
) -> CertificateRecord:
    """Store the signed precertificate or certificate for a reserved serial.

    The DER must pass :func:`certificate_values`' checks. The serial becomes "issued" (a precertificate counts
    as issuance, BR 7.1.2.9) and expires with the certificate. A second certificate of the same kind for one
    serial is refused by UNIQUE(serial_id, kind).
    """
    issuer = session.get(Issuer, serial_record.issuer_id)
    if issuer is None:
        raise CandorError(ErrorKind.POLICY, "certificate issuer name does not match the serial's issuer")
    values = certificate_values(
        serial_id=serial_record.id, serial_hex=serial_record.serial_hex, issuer_subject_der=issuer.subject_der,
        kind=kind, der=der, created_at=created_at,
    )  # fmt: skip
    stored = session.get(SerialRecord, serial_record.id)
    if stored is None:
        raise CandorError(ErrorKind.NOT_FOUND, f"serial {serial_record.serial_hex} is not reserved")
    if stored.status == "revoked":
        raise CandorError(ErrorKind.POLICY, f"serial {serial_record.serial_hex} is revoked")
    record = CertificateRecord(**values)
    insert_unique(
        session,
        record,
        {"uq_certificates_serial_kind": f"a {kind} for serial {serial_record.serial_hex} of this issuer"},
    )
    stored.status = "issued"
    stored.expires_at = record.not_after
    if serial_record is not stored:  # a detached copy from an earlier session: keep it truthful too
        serial_record.status = stored.status
        serial_record.expires_at = stored.expires_at
    session.flush()
    session.refresh(record)
    return record


def add_ocsp_responder(
    session: Session, *, issuer: Issuer, key: KeyRecord, certificate: CertificateRecord, created_at: datetime
) -> OcspResponder:
    """Record *certificate* (already stored under *issuer*) as a delegated OCSP responder for *issuer*.

    Refused unless the key is an OCSP-responder key, the certificate is for that key, and it carries the
    id-kp-OCSPSigning EKU (RFC 6960 4.2.2.2: the responder must be authorised by the issuer itself).
    """
    if key.purpose != "ocsp-responder":
        raise CandorError(ErrorKind.POLICY, f"key {key.label!r} is a {key.purpose} key, not an OCSP responder key")
    parsed = _parse_certificate(certificate.der)
    if _spki_der(parsed) != key.public_key_der:
        raise CandorError(ErrorKind.POLICY, f"the responder certificate is not for key {key.label!r}")
    if parsed.issuer.public_bytes() != issuer.subject_der:
        raise CandorError(ErrorKind.POLICY, f"the responder certificate was not issued by {issuer.name!r}")
    try:
        eku = parsed.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = x509.ExtendedKeyUsage([])
    if list(eku) != [x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING]:
        raise CandorError(ErrorKind.POLICY, "a responder certificate carries exactly the id-kp-OCSPSigning EKU")
    record = OcspResponder(
        issuer_id=issuer.id,
        key_id=key.id,
        certificate_id=certificate.id,
        not_before=parsed.not_valid_before_utc,
        not_after=parsed.not_valid_after_utc,
        status="active",
        created_at=_utc(created_at),
    )
    insert_unique(session, record, {"uq_ocsp_responders_certificate_id": "that responder certificate"})
    return record


def ocsp_responders(session: Session, issuer: Issuer, *, status: str | None = "active") -> list[OcspResponder]:
    """The issuer's responders (by default the active ones), newest first."""
    query = select(OcspResponder).where(OcspResponder.issuer_id == issuer.id).order_by(OcspResponder.id.desc())
    if status is not None:
        query = query.where(OcspResponder.status == status)
    return list(session.scalars(query))
