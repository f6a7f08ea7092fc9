"""Candor's tokens as independent verifiers see them (acceptance 1 and 2): ``openssl ts -verify`` for a file and for
a digest, with and without the certificate in the token; Trail of Bits' rfc3161-client; pyHanko's token
validation. A token changed by one byte fails each of them. Both a P-256 and an RSA-3072 unit."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from tsa_support import Harness, harness, post, read_reply, request, served, tst_info

from support import openssl

DATA = b"a release tarball, say\n" * 100


@pytest.fixture(params=["p256", "rsa3072"])
def unit(request: pytest.FixtureRequest, p256_home: Path, rsa_home: Path) -> Iterator[tuple[Harness, str]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    with harness(p256_home if request.param == "p256" else rsa_home) as opened, served(opened) as url:
        yield opened, url


def _files(tsa: Harness, scratch: Path) -> tuple[Path, Path, Path]:
    """data, the root (the only trust anchor), and the unit certificate with its issuer (for -untrusted)."""
    (scratch / "data.bin").write_bytes(DATA)
    (scratch / "root.pem").write_bytes(tsa.root.public_bytes(Encoding.PEM))
    unit = tsa.tsa.keeper.units.units[-1].record.certificate
    (scratch / "untrusted.pem").write_bytes(unit.public_bytes(Encoding.PEM) + tsa.tsa_ca.public_bytes(Encoding.PEM))
    return scratch / "data.bin", scratch / "root.pem", scratch / "untrusted.pem"


def _tampered(reply: bytes) -> bytes:
    """The reply with one byte of the TSTInfo (the serial number, near its start) changed."""
    tst = tst_info(read_reply(reply).token or b"")
    serial = int(tst["serialNumber"]).to_bytes(16, "big")
    at = reply.index(serial)
    return reply[:at] + bytes([reply[at] ^ 0x01]) + reply[at + 1 :]


def test_openssl_verifies_tokens_for_a_file_and_a_digest_with_and_without_the_certificate(
    unit: tuple[Harness, str], tmp_path: Path
) -> None:
    tsa, url = unit
    data, root, untrusted = _files(tsa, tmp_path)
    for with_cert in (True, False):
        query = tmp_path / f"q{with_cert}.tsq"
        made = openssl("ts", "-query", "-data", data, "-sha384", *(["-cert"] if with_cert else []), "-out", query)
        assert made.returncode == 0, made.stderr
        status, _, reply = post(url, query.read_bytes())
        assert status == 200 and read_reply(reply).status == 0
        response = tmp_path / f"r{with_cert}.tsr"
        response.write_bytes(reply)
        extra = [] if with_cert else ["-untrusted", untrusted]
        digest = openssl("dgst", "-sha384", "-r", data).stdout.split()[0]
        for how in (["-data", data], ["-digest", digest], ["-queryfile", query]):
            verified = openssl("ts", "-verify", "-in", response, *how, "-CAfile", root, *extra)
            assert verified.returncode == 0 and "Verification: OK" in verified.stdout, verified.stdout + verified.stderr
        if not with_cert:  # no certificate in the token and none given: openssl cannot find the signer
            refused = openssl("ts", "-verify", "-in", response, "-data", data, "-CAfile", root)
            assert refused.returncode != 0
        changed = tmp_path / f"changed{with_cert}.tsr"
        changed.write_bytes(_tampered(reply))
        refused = openssl("ts", "-verify", "-in", changed, "-data", data, "-CAfile", root, *extra)
        assert refused.returncode != 0 and "Verification: OK" not in refused.stdout
        other = openssl("ts", "-verify", "-in", response, "-digest", "00" * 48, "-CAfile", root, *extra)
        assert other.returncode != 0


def test_rfc3161_client_verifies_the_tokens_and_refuses_a_changed_one(unit: tuple[Harness, str]) -> None:
    from rfc3161_client import TimestampRequestBuilder, VerificationError, VerifierBuilder, decode_timestamp_response

    tsa, url = unit
    query = TimestampRequestBuilder().data(DATA).nonce(nonce=True).cert_request(cert_request=True).build()
    status, _, reply = post(url, query.as_bytes())
    assert status == 200
    response = decode_timestamp_response(reply)
    verifier = (
        VerifierBuilder.from_request(query)
        .add_root_certificate(tsa.root)
        .add_intermediate_certificate(tsa.tsa_ca)
        .build()
    )
    assert verifier.verify_message(response, DATA)
    with pytest.raises(VerificationError):
        verifier.verify_message(response, DATA + b"!")
    with pytest.raises((VerificationError, ValueError)):
        verifier.verify_message(decode_timestamp_response(_tampered(reply)), DATA)


def test_pyhanko_validates_the_token_against_candor_s_root(unit: tuple[Harness, str]) -> None:
    from asn1crypto import cms
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko.sign.validation.status import TimestampSignatureStatus
    from pyhanko_certvalidator import ValidationContext

    tsa, url = unit
    digest = hashlib.sha256(DATA).digest()
    reply = read_reply(post(url, request(digest=digest))[2])
    assert reply.token is not None
    signed_data = cms.ContentInfo.load(reply.token)["content"]
    root = asn1_x509.Certificate.load(tsa.root.public_bytes(Encoding.DER))
    context = ValidationContext(trust_roots=[root], allow_fetching=False)
    found = asyncio.run(validate_tst_signed_data(signed_data, context, expected_tst_imprint=lambda _: digest))
    status = TimestampSignatureStatus(**found)
    assert status.intact and status.valid and status.trusted, status.summary()
    assert status.validation_path is not None
    assert status.validation_path.trust_anchor.certificate.dump() == root.dump()


def test_candor_s_own_verifier_agrees(unit: tuple[Harness, str]) -> None:
    from candor.errors import CandorError
    from candor.tsa.verify import verify_token

    tsa, url = unit
    reply = post(url, request(data=DATA, cert_req=False))[2]
    unit_certificate = tsa.tsa.keeper.units.units[-1].record.certificate
    known: list[x509.Certificate] = [unit_certificate, tsa.tsa_ca]
    verified = verify_token(reply, roots=[tsa.root], certificates=known, message=DATA)
    assert verified.signer == unit_certificate and verified.chain == (tsa.tsa_ca, tsa.root)
    with pytest.raises(CandorError, match="imprint"):
        verify_token(reply, roots=[tsa.root], certificates=known, message=DATA + b"!")
    with pytest.raises(CandorError, match=r"signature|message-digest"):
        verify_token(_tampered(reply), roots=[tsa.root], certificates=known, message=DATA)
    with pytest.raises(CandorError, match="neither in the token nor known"):
        verify_token(reply, roots=[tsa.root], message=DATA)
