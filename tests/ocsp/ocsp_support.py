"""Helpers shared by the OCSP tests (a module name of its own: every test directory has a conftest)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp as x509_ocsp
from issuing import CA  # type: ignore[import-not-found]

from candor.audit import AuditLog
from candor.revocation import RevocationReason, revoke
from candor.revocation.ocsp.index import ResponseIndex
from candor.revocation.ocsp.presign import OcspSigner
from candor.revocation.ocsp.settings import OcspSettings
from candor.storage import repositories


@dataclass
class Ocsp:
    ca: CA
    signer: OcspSigner
    index: ResponseIndex
    settings: OcspSettings


def issuer_certificate(ocsp: Ocsp, name: str = "tls-e1") -> x509.Certificate:
    with ocsp.ca.db.session() as session:
        record = repositories.issuer_by_name(session, name)
        assert record is not None
        return x509.load_der_x509_certificate(record.certificate_der)


def issuer_of(ocsp: Ocsp, certificate: x509.Certificate) -> x509.Certificate:
    with ocsp.ca.db.session() as session:
        for record in repositories.list_issuers(session):
            if record.subject_der == certificate.issuer.public_bytes():
                return x509.load_der_x509_certificate(record.certificate_der)
    raise AssertionError("no issuer")


def _content(serial: int) -> bytes:
    return serial.to_bytes(serial.bit_length() // 8 + 1, "big")


def response_for(ocsp: Ocsp, certificate: x509.Certificate) -> x509_ocsp.OCSPResponse:
    """The indexed response for *certificate*, found as a SHA-1 CertID request finds it."""
    key_hash = x509.SubjectKeyIdentifier.from_public_key(issuer_of(ocsp, certificate).public_key()).digest
    entry = ocsp.index.by_key[key_hash + _content(certificate.serial_number)]
    return x509_ocsp.load_der_ocsp_response(entry.der)


def revoke_only(ocsp: Ocsp, serial: int, reason: RevocationReason, *, actor: str = "test") -> list[str]:
    """Revoke *serial* under tls-e1 without telling the pre-signer (as ``candor revoke`` in another process)."""
    with ocsp.ca.db.session() as session:
        issuer = repositories.issuer_by_name(session, "tls-e1")
        assert issuer is not None
        return revoke(
            session, audit=AuditLog(ocsp.ca.clock), actor=actor, issuer=issuer, serial=serial, reason=reason,
            now=ocsp.ca.clock.now(),
        )  # fmt: skip


def revoke_and_resign(ocsp: Ocsp, serial: int, reason: RevocationReason) -> None:
    ocsp.signer.on_revoked(revoke_only(ocsp, serial, reason))


DER = Encoding.DER
