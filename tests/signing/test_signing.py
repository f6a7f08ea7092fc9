"""Signing exactly what was linted: single-use tokens, DER assembly, and the final TBS built at the DER level."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "profiles"))

from subscriber_pki import fake_sct, issuing_ca, request, sct_list, template

from candor import signing
from candor.errors import CandorError, ErrorKind
from candor.lint import CertificateKind
from candor.policy.algorithms import KeyAlgorithm
from candor.profiles import final_certificate, precertificate, to_builder


def _precert_token() -> signing.SigningToken:
    return signing.prepare(
        precertificate(template(request("dv", common_name=None))),
        algorithm=KeyAlgorithm.ECDSA_P256,
        kind=CertificateKind.DV_PRECERTIFICATE,
        what="test precertificate",
    )


def test_the_signed_tbs_is_the_linted_tbs_byte_for_byte() -> None:
    token = _precert_token()
    linted = token.tbs
    certificate = signing.sign(token, issuing_ca("dv").key, issuer_key=issuing_ca("dv").key.public_key())
    assert certificate.tbs_certificate_bytes == linted
    certificate.verify_directly_issued_by(issuing_ca("dv").certificate)


def test_a_token_signs_once() -> None:
    token = _precert_token()
    key = issuing_ca("dv").key
    signing.sign(token, key, issuer_key=key.public_key())
    with pytest.raises(CandorError, match="already redeemed"):
        signing.sign(token, key, issuer_key=key.public_key())


def test_a_template_that_fails_lint_is_never_signed() -> None:
    bad = template(request("dv", common_name=None))
    with pytest.raises(CandorError) as caught:  # a final certificate linted as a precertificate lacks the poison
        signing.prepare(bad, algorithm=KeyAlgorithm.ECDSA_P256, kind=CertificateKind.DV_PRECERTIFICATE, what="x")
    assert caught.value.kind is ErrorKind.LINT


def test_a_signature_by_the_wrong_key_is_caught() -> None:
    token = _precert_token()
    with pytest.raises(CandorError, match=r"does not verify"):
        # a key store that hands back another key than the issuer's: the signature is checked and refused
        signing.sign(token, ec.generate_private_key(ec.SECP256R1()), issuer_key=issuing_ca("dv").key.public_key())


def test_final_tbs_at_der_level_equals_the_template_final() -> None:
    """The signer builds the final TBS from the stored precertificate TBS; it matches the profile's own."""
    precert_template = precertificate(template(request("dv", common_name=None)))
    scts = sct_list(fake_sct(b"log-a", 1_700_000_000_000), fake_sct(b"log-b", 1_700_000_000_001))
    key = issuing_ca("dv").key
    from cryptography.hazmat.primitives import hashes

    precert_tbs = to_builder(precert_template).sign(key, hashes.SHA256()).tbs_certificate_bytes
    expected = to_builder(final_certificate(precert_template, scts)).sign(key, hashes.SHA256()).tbs_certificate_bytes
    assert signing.final_tbs_from_precertificate(precert_tbs, scts) == expected


def test_the_final_tbs_needs_a_precertificate() -> None:
    plain = template(request("dv", common_name=None))
    from cryptography.hazmat.primitives import hashes

    tbs = to_builder(plain).sign(issuing_ca("dv").key, hashes.SHA256()).tbs_certificate_bytes
    with pytest.raises(CandorError, match="RFC 6962"):
        signing.final_tbs_from_precertificate(tbs, None)
