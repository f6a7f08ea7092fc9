"""revokeCert (RFC 8555 7.6): by the ordering account, by an account holding every authorization, or by the
certificate's own key.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy.orm import Session

from candor.acme.core import Reply, ServiceCore
from candor.acme.jwk import b64url_decode
from candor.acme.jws import VerifiedRequest
from candor.acme.problems import AcmeProblem
from candor.revocation import RevocationReason, revoke
from candor.storage import orders
from candor.storage.models_issuance import Account


class Revocation(ServiceCore):
    """revokeCert (RFC 8555 7.6)."""

    # -- revocation (RFC 8555 7.6) ----------------------------------------------------------------------
    def revoke_certificate(self, request: VerifiedRequest) -> Reply:
        """Revoke a certificate, signed either by the account that ordered it (kid) or by its own key (jwk)."""
        payload = request.payload_json()
        der = b64url_decode(payload.get("certificate"), "certificate")
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError:
            raise AcmeProblem("malformed", "'certificate' is not a DER X.509 certificate (RFC 8555 7.6)") from None
        reason = parse_reason_code(payload.get("reason", 0))
        with self.db.session() as session:
            stored = orders.find_certificate_by_der(session, der)
            if stored is None:
                raise AcmeProblem("malformed", "this server did not issue that certificate", 404)
            serial, issuer = stored
            if request.kid is not None:
                account = self.account_for(session, request)
                issuance = orders.issuance_for_serial(session, serial.id)
                ordered = issuance is not None and issuance.account_id == account.id
                if not ordered and not self._holds_authorizations(session, account, certificate):
                    raise AcmeProblem(
                        "unauthorized",
                        "only the account that ordered a certificate, or one holding valid authorizations for "
                        "every identifier in it, may revoke it (RFC 8555 7.6)",
                        403,
                    )
                actor = f"acme:account/{account.id}"
            else:
                spki = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
                if request.key is None or _spki(request.key) != spki:
                    raise AcmeProblem("unauthorized", "the request is not signed by the certificate's key", 403)
                actor = "acme:certificate-key"
            if serial.status == "revoked" and reason is not RevocationReason.KEY_COMPROMISE:
                raise AcmeProblem("alreadyRevoked", "the certificate is already revoked (RFC 8555 7.6)", 400)
            revoke(
                session, audit=self.audit, actor=actor, issuer=issuer,
                serial=certificate.serial_number, reason=reason, now=self.clock.now(),
            )  # fmt: skip
        return 200, b"", {}

    def _holds_authorizations(self, session: Session, account: Account, certificate: x509.Certificate) -> bool:
        """RFC 8555 7.6, the third case: *account* holds a valid, unexpired authorization for every identifier
        in the certificate (the exact name, or the wildcard authorization for a wildcard name)."""
        try:
            san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return False
        wanted = [(False, "dns", n.lower()) if not n.startswith("*.") else (True, "dns", n[2:].lower())
                  for n in san.get_values_for_type(x509.DNSName)]  # fmt: skip
        wanted += [(False, "ip", str(ip)) for ip in san.get_values_for_type(x509.IPAddress)]
        if not wanted:
            return False
        now = self.clock.now()
        held = {
            (a.wildcard, a.identifier_type, a.identifier_value)
            for a in orders.candidate_authorizations(session, account_id=account.id, values=[w[2] for w in wanted])
            if a.status == "valid" and a.expires_at > now
        }
        return all(item in held for item in wanted)


def parse_reason_code(value: object) -> RevocationReason:
    """RFC 8555 7.6: an RFC 5280 CRLReason code; BR 7.2.2 narrows which a subscriber may give."""
    allowed = {
        RevocationReason.UNSPECIFIED,
        RevocationReason.KEY_COMPROMISE,
        RevocationReason.SUPERSEDED,
        RevocationReason.CESSATION_OF_OPERATION,
        RevocationReason.AFFILIATION_CHANGED,
    }
    if not isinstance(value, int) or isinstance(value, bool) or value not in {int(r) for r in allowed}:
        raise AcmeProblem("badRevocationReason", "reason must be 0, 1, 3, 4 or 5 (BR 7.2.2; RFC 8555 7.6)", 400)
    return RevocationReason(value)


def _spki(key: Any) -> bytes:
    return bytes(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))
