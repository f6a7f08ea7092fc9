"""Renewal information (RFC 9773): the suggested window of a certificate this server issued."""

from __future__ import annotations

from cryptography import x509
from sqlalchemy.orm import Session

from candor.acme import ari
from candor.acme.core import Reply, ServiceCore
from candor.acme.problems import AcmeProblem
from candor.acme.records import (
    rfc3339,
)
from candor.storage import orders, repositories
from candor.storage.models import SerialRecord


class Renewal(ServiceCore):
    """renewalInfo (RFC 9773 4)."""

    def renewal_info(self, cert_id: str) -> Reply:
        """RFC 9773 4: the suggested renewal window of a certificate this server issued (GET, no JWS)."""
        parsed = ari.parse_cert_id(cert_id)
        now = self.clock.now()
        with self.db.session() as session:
            found = certificate_by_cert_id(session, parsed)
            if found is None:
                raise AcmeProblem("malformed", "no certificate with this identifier was issued here", 404)
            serial, certificate = found
            start, end = ari.suggested_window(
                certificate.not_valid_before_utc, certificate.not_valid_after_utc,
                revoked=serial.status == "revoked", now=now,
            )  # fmt: skip
        body = {"suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)}}
        return 200, body, {"Retry-After": str(ari.RETRY_AFTER_SECONDS)}


def _key_identifier(certificate_der: bytes) -> bytes | None:
    """The subjectKeyIdentifier of an issuer certificate (what its certificates carry as AKI keyIdentifier)."""
    try:
        extension = x509.load_der_x509_certificate(certificate_der).extensions
        return extension.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except (ValueError, x509.ExtensionNotFound):
        return None


def certificate_by_cert_id(session: Session, cert_id: ari.CertId) -> tuple[SerialRecord, x509.Certificate] | None:
    """The issued certificate (and its serial record) an RFC 9773 certificate identifier names, or None."""
    for issuer in repositories.list_issuers(session):
        if _key_identifier(issuer.certificate_der) != cert_id.key_identifier:
            continue
        serial = repositories.serial_by_value(session, issuer, cert_id.serial)
        der = orders.find_certificate_der(session, serial.id, "certificate") if serial is not None else None
        if serial is not None and der is not None:
            return serial, x509.load_der_x509_certificate(der)
    return None
