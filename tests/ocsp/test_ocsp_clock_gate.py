"""WS-08e at the OCSP signers: while the clock watch distrusts the clock, the pre-signer signs nothing (thisUpdate
and producedAt come from that clock; the serials stay due) and a nonce request gets the pre-signed response
instead of a fresh signature."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp as x509_ocsp
from ocsp_support import Ocsp, issuer_of, response_for

from candor.errors import CandorError, ErrorKind
from candor.revocation.ocsp.index import parse_request
from candor.revocation.ocsp.ondemand import NonceSigner
from candor.revocation.ocsp.settings import OcspSettings
from candor.timekeeping import ClockStatus


@dataclasses.dataclass
class Switch:
    trustworthy: bool = True

    def status(self) -> ClockStatus:
        return ClockStatus(self.trustworthy, "" if self.trustworthy else "no source has answered for 24 h")


def test_the_pre_signer_signs_nothing_while_the_clock_is_distrusted_and_catches_up_after(ocsp: Ocsp) -> None:
    ocsp.signer.presign_new()  # what earlier tests left due
    watch = Switch(trustworthy=False)
    ocsp.signer.clock_watch = watch
    certificate = ocsp.ca.issue(["clock-gate.example.com"]).certificate
    with pytest.raises(CandorError) as refused:
        ocsp.signer.presign_new()
    assert refused.value.kind is ErrorKind.UNAVAILABLE
    with pytest.raises(KeyError):
        response_for(ocsp, certificate)
    watch.trustworthy = True
    assert ocsp.signer.presign_new() == 1  # still due
    statuses = {single.certificate_status for single in response_for(ocsp, certificate).responses}
    assert statuses == {x509_ocsp.OCSPCertStatus.GOOD}


def test_a_nonce_request_gets_the_pre_signed_response_while_the_clock_is_distrusted(ocsp: Ocsp) -> None:
    certificate = ocsp.ca.issue(["clock-gate-nonce.example.com"]).certificate
    ocsp.signer.presign_new()
    watch = Switch(trustworthy=False)
    signer = NonceSigner(ocsp.ca.db, ocsp.ca.stores, ocsp.ca.clock, OcspSettings(nonce="sign"), clock_watch=watch)
    try:
        issuer = issuer_of(ocsp, certificate)
        builder = x509_ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1())  # noqa: S303
        request = builder.add_extension(x509.OCSPNonce(b"\x05" * 16), critical=False).build()
        parsed = parse_request(request.public_bytes(Encoding.DER))
        cached = ocsp.index.by_key[parsed.key]
        assert signer.sign_now(parsed, cached) is None  # the cache answers
        watch.trustworthy = True
        assert signer.sign_now(parsed, cached) is not None
    finally:
        signer.close()
