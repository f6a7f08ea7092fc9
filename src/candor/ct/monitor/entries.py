"""Which log entries are Candor's, and whether Candor has a record of each (RFC 6962 5.3, monitors).

An entry is under a Candor issuer when:

- a ``precert_entry``'s ``issuer_key_hash`` is the SHA-256 of a Candor issuer's SubjectPublicKeyInfo (RFC 6962
  3.2: that key signed the precertificate; the log checked the chain when it accepted it);
- an ``x509_entry``'s certificate names a Candor issuer and its signature verifies with that issuer's key.

Such an entry is *known* when Candor stored it: an x509 entry by its SHA-256 fingerprint (a certificate, or an
issuer's own certificate); a precert entry by (issuer, serial) with a stored precertificate (or certificate)
whose TBSCertificate without the poison and SCT list is byte for byte the entry's. Anything else signed by a
Candor key is *unknown*: mis-issuance, or a key used outside the signer. A serial Candor issued with other
contents is unknown too: that is a second certificate with a reused serial.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select
from sqlalchemy.orm import Session

from candor.ct.log import tls
from candor.profiles import der, tbs_without_poison_or_scts
from candor.storage import serial_to_hex
from candor.storage.models import CertificateRecord, Issuer, SerialRecord


@dataclass(frozen=True)
class CandorIssuer:
    id: int
    name: str
    certificate: x509.Certificate
    fingerprint: str  # hex SHA-256 of the DER


@dataclass(frozen=True)
class IssuerIndex:
    """Every issuer in storage (roots too: any Candor key signing what Candor did not record is an alert)."""

    by_key_hash: dict[bytes, list[CandorIssuer]] = field(default_factory=dict)
    by_subject: dict[bytes, list[CandorIssuer]] = field(default_factory=dict)
    fingerprints: frozenset[str] = frozenset()

    @classmethod
    def load(cls, session: Session) -> IssuerIndex:
        by_key_hash: dict[bytes, list[CandorIssuer]] = {}
        by_subject: dict[bytes, list[CandorIssuer]] = {}
        for row in session.scalars(select(Issuer).order_by(Issuer.id)):
            certificate = x509.load_der_x509_certificate(row.certificate_der)
            issuer = CandorIssuer(row.id, row.name, certificate, row.fingerprint_sha256)
            spki = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            by_key_hash.setdefault(hashlib.sha256(spki).digest(), []).append(issuer)  # RFC 6962 3.2 issuer_key_hash
            by_subject.setdefault(row.subject_der, []).append(issuer)
        fingerprints = frozenset(i.fingerprint for group in by_subject.values() for i in group)
        return cls(by_key_hash, by_subject, fingerprints)


@dataclass(frozen=True)
class EntryFinding:
    """A log entry under a Candor issuer: the record it matched, or why it is unknown."""

    index: int
    entry_type: tls.EntryType
    issuer: str  # the Candor issuer's name (the first, when one key has several certificates)
    serial_hex: str
    sha256: str  # of the certificate (x509 entry) or of the TBSCertificate (precert entry)
    names: tuple[str, ...]
    certificate_id: int | None  # the matching certificates row, when there is one
    known: bool
    reason: str = ""  # why it is unknown
    evidence_hex: str = ""  # the logged certificate's DER, or the precert entry's TBSCertificate


class UnreadableEntry(ValueError):
    """An entry whose leaf cannot be parsed (RFC 6962 3.4): counted, not matched."""


def examine(session: Session, issuers: IssuerIndex, index: int, leaf_input: bytes) -> EntryFinding | None:
    """The finding for the entry at *index*, or None when it is not under a Candor issuer."""
    try:
        leaf = tls.parse_merkle_tree_leaf(leaf_input)
    except tls.TLSError as exc:
        raise UnreadableEntry(str(exc)) from None
    if leaf.entry.entry_type is tls.EntryType.PRECERT:
        return _precert(session, issuers, index, leaf.entry)
    return _x509(session, issuers, index, leaf.entry.certificate)


def _precert(session: Session, issuers: IssuerIndex, index: int, entry: tls.SignedEntry) -> EntryFinding | None:
    candidates = issuers.by_key_hash.get(entry.issuer_key_hash)
    if not candidates:
        return None
    tbs = entry.tbs_certificate
    serial = _tbs_serial(tbs)
    finding = _Finding(index, tls.EntryType.PRECERT, candidates[0].name, _hex(serial),
                       hashlib.sha256(tbs).hexdigest(), _tbs_names(tbs), tbs.hex())  # fmt: skip
    if serial is None:
        return finding.unknown("the TBSCertificate has no readable serial number")
    records = _records(session, [c.id for c in candidates], serial)
    if not records:
        return finding.unknown(f"no serial {_hex(serial)} under {_names(candidates)} in Candor's records")
    for record in sorted(records, key=lambda r: r.kind != "precertificate"):  # the precertificate first
        stored = x509.load_der_x509_certificate(record.der)
        if tbs_without_poison_or_scts(stored.tbs_certificate_bytes) == tbs:
            precert = next((r for r in records if r.kind == "precertificate"), record)
            return finding.known(precert.id)
    return finding.unknown(f"serial {_hex(serial)} is Candor's, but its TBSCertificate differs (a reused serial)")


def _x509(session: Session, issuers: IssuerIndex, index: int, certificate_der: bytes) -> EntryFinding | None:
    try:
        certificate = x509.load_der_x509_certificate(certificate_der)
    except ValueError:
        return None  # not a certificate cryptography reads: no issuer to match (certspotter calls it malformed)
    signers = [c for c in issuers.by_subject.get(certificate.issuer.public_bytes(), []) if _signed_by(certificate, c)]
    if not signers:
        return None
    fingerprint = hashlib.sha256(certificate_der).hexdigest()
    serial = certificate.serial_number
    finding = _Finding(index, tls.EntryType.X509, signers[0].name, _hex(serial), fingerprint,
                       _certificate_names(certificate), certificate_der.hex())  # fmt: skip
    record = session.scalars(select(CertificateRecord).where(CertificateRecord.fingerprint_sha256 == fingerprint))
    found = record.one_or_none()
    if found is not None:
        return finding.known(found.id)
    if fingerprint in issuers.fingerprints:
        return finding.known(None)  # one of Candor's CA certificates (a ceremony's output)
    if _records(session, [c.id for c in signers], serial):
        return finding.unknown(f"serial {_hex(serial)} is Candor's, but this certificate is not the one it stored")
    return finding.unknown(f"no serial {_hex(serial)} under {_names(signers)} in Candor's records")


@dataclass(frozen=True)
class _Finding:
    index: int
    entry_type: tls.EntryType
    issuer: str
    serial_hex: str
    sha256: str
    names: tuple[str, ...]
    evidence_hex: str

    def known(self, certificate_id: int | None) -> EntryFinding:
        return EntryFinding(self.index, self.entry_type, self.issuer, self.serial_hex, self.sha256, self.names,
                            certificate_id, True)  # fmt: skip

    def unknown(self, reason: str) -> EntryFinding:
        return EntryFinding(self.index, self.entry_type, self.issuer, self.serial_hex, self.sha256, self.names,
                            None, False, reason, self.evidence_hex)  # fmt: skip


def _records(session: Session, issuer_ids: Sequence[int], serial: int) -> list[CertificateRecord]:
    if serial <= 0:
        return []  # Candor never issues these (RFC 5280 4.1.2.2), so there is no record to find
    query = (
        select(CertificateRecord)
        .join(SerialRecord, SerialRecord.id == CertificateRecord.serial_id)
        .where(SerialRecord.issuer_id.in_(issuer_ids), SerialRecord.serial_hex == serial_to_hex(serial))
    )
    return list(session.scalars(query))


def _signed_by(certificate: x509.Certificate, issuer: CandorIssuer) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer.certificate)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _tbs_serial(tbs: bytes) -> int | None:
    """RFC 5280 4.1: TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber INTEGER, ... }."""
    try:
        tag, start, end = der.read(tbs, 0, len(tbs))
        if tag != der.SEQUENCE:
            return None
        for child, _tlv, content_start, content_end in der.children(tbs, start, end):
            if child == 0xA0:  # version [0] EXPLICIT
                continue
            if child != 0x02:  # INTEGER
                return None
            return int.from_bytes(tbs[content_start:content_end], "big", signed=True)
    except der.DERError:
        return None
    return None


def _tbs_names(tbs: bytes) -> tuple[str, ...]:
    """The DNS names of a bare TBSCertificate, best effort: for the operator's alert line only."""
    try:
        extension = x509.load_der_x509_certificate(_wrap_tbs(tbs)).extensions
        names = extension.get_extension_for_class(x509.SubjectAlternativeName).value
        return tuple(names.get_values_for_type(x509.DNSName))
    except (ValueError, x509.ExtensionNotFound):
        return ()


def _wrap_tbs(tbs: bytes) -> bytes:
    """A certificate around *tbs* with an empty signature, only so that cryptography parses its extensions."""
    algorithm = der.encode(der.SEQUENCE, der.encode(der.OBJECT_IDENTIFIER, bytes.fromhex("2a8648ce3d040302")))
    return der.encode(der.SEQUENCE, tbs + algorithm + der.encode(0x03, b"\x00"))


def _certificate_names(certificate: x509.Certificate) -> tuple[str, ...]:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return ()
    return tuple(names.get_values_for_type(x509.DNSName))


def _hex(serial: int | None) -> str:
    if serial is None:
        return "?"
    return serial_to_hex(serial) if serial > 0 else f"{serial:x}"


def _names(issuers: Sequence[CandorIssuer]) -> str:
    return ", ".join(repr(i.name) for i in issuers)


__all__ = ["CandorIssuer", "EntryFinding", "IssuerIndex", "UnreadableEntry", "examine"]
