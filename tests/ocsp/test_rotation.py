"""Rotation of the delegated responder certificate (BR 7.1.2.8), in a hierarchy of its own (the clock moves)."""

from __future__ import annotations

from datetime import timedelta

from cryptography import x509
from ocsp_support import Ocsp, response_for
from sqlalchemy import select

from candor.storage import repositories
from candor.storage.models import OcspResponder


def test_the_responder_certificate_is_rotated_before_its_half_life_with_a_new_key(ocsp: Ocsp) -> None:
    assert ocsp.signer.rotate_responders() == []
    certificate = ocsp.ca.issue(["rotate.example.com"]).certificate
    ocsp.signer.presign_new(limit=100_000)
    (old,) = response_for(ocsp, certificate).certificates
    ocsp.ca.clock.advance(timedelta(days=15, seconds=1))  # half of the ceremony's 30 days
    rotated = ocsp.signer.rotate_responders()
    assert sorted(rotated) == ["tls-e1-ocsp-2", "tls-r1-ocsp-2"]
    ocsp.signer.presign_new(limit=100_000)
    response = response_for(ocsp, certificate)
    (new,) = response.certificates
    assert new.serial_number != old.serial_number and new.public_key() != old.public_key()
    assert response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(new.public_key()).digest
    assert new.not_valid_before_utc == ocsp.ca.clock.now()
    new.extensions.get_extension_for_class(x509.OCSPNoCheck)
    with ocsp.ca.db.session() as session:
        states = sorted(session.scalars(select(OcspResponder.status)))
    assert states.count("active") == 2 and states.count("retired") >= 2
    # the responder certificate's own serial is recorded under the issuer, never reused
    with ocsp.ca.db.session() as session:
        issuer = repositories.issuer_by_name(session, "tls-e1")
        assert issuer is not None
        assert repositories.serial_by_value(session, issuer, new.serial_number) is not None
