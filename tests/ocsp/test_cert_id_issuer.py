"""A CertID names its issuer by two hashes, of the name and of the key (RFC 6960 4.1.1); a request whose
issuerKeyHash is an issuer's but whose issuerNameHash is not that issuer's name asks about another issuer (one
with the same key and another name) and gets unauthorized (RFC 6960 2.3, RFC 5019 2.2.3), as a request for an
issuer the responder does not serve does, never the pre-signed answer: with SHA-1 and SHA-256 CertIDs, by GET and
POST, with and without a nonce, from ``openssl ocsp`` too."""

from __future__ import annotations

import base64
import hashlib
import urllib.parse
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp as x509_ocsp
from cryptography.x509.oid import NameOID
from ocsp_server import serving
from ocsp_support import Ocsp
from ocsp_support import issuer_certificate as _issuer

from candor.revocation.ocsp.http import OcspApp
from candor.revocation.ocsp.index import ResponseIndex
from candor.revocation.ocsp.ondemand import NonceSigner
from candor.revocation.ocsp.settings import OcspSettings
from support import openssl

POST = {"content-type": "application/ocsp-request"}
UNAUTHORIZED = bytes.fromhex("30030a0106")
SHA1 = hashes.SHA1()  # noqa: S303  (RFC 5019 2.1.1: the CertID hash clients send)
ALGORITHMS = (SHA1, hashes.SHA256())
OTHER_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Not the issuer, same key")])


@pytest.fixture
def url(ocsp: Ocsp) -> Iterator[str]:
    with serving(OcspApp(ocsp.index, ocsp.settings, clock=ocsp.ca.clock)) as base:
        yield base


def _request(certificate: x509.Certificate, issuer: x509.Certificate, algorithm: hashes.HashAlgorithm, *,
             nonce: bytes | None = None, name_hash: bytes | None = None) -> bytes:  # fmt: skip
    """An OCSPRequest for *certificate*, its issuerNameHash replaced by *name_hash* when given."""
    builder = x509_ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, algorithm)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    raw = builder.build().public_bytes(Encoding.DER)
    if name_hash is None:
        return raw
    right = hashlib.new(algorithm.name, issuer.subject.public_bytes()).digest()
    assert raw.count(right) == 1 and len(name_hash) == len(right)
    return raw.replace(right, name_hash)


def _other_name_hash(algorithm: hashes.HashAlgorithm) -> bytes:
    return hashlib.new(algorithm.name, OTHER_NAME.public_bytes()).digest()


def _good(body: bytes) -> bool:
    singles = list(x509_ocsp.load_der_ocsp_response(body).responses)
    return bool(singles) and all(s.certificate_status is x509_ocsp.OCSPCertStatus.GOOD for s in singles)


def _get(url: str, raw: bytes) -> bytes:
    return httpx.get(f"{url}/ocsp/tls-e1/{urllib.parse.quote(base64.b64encode(raw).decode(), safe='')}").content


def _post(url: str, raw: bytes) -> bytes:
    return httpx.post(f"{url}/ocsp/tls-e1", content=raw, headers=POST).content


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=["sha1", "sha256"])
def test_a_cert_id_with_the_issuers_key_hash_and_another_name_hash_is_unauthorized(
    ocsp: Ocsp, url: str, algorithm: hashes.HashAlgorithm
) -> None:
    certificate = ocsp.ca.issue([f"name-hash-{algorithm.name}.example.com"]).certificate
    ocsp.signer.presign_new()
    issuer = _issuer(ocsp)
    for nonce in (None, b"0123456789abcdef"):
        right = _request(certificate, issuer, algorithm, nonce=nonce)
        for send in (_get, _post):
            assert _good(send(url, right)), (send.__name__, nonce)  # the real issuer's CertID is answered
            wrong = _request(certificate, issuer, algorithm, nonce=nonce, name_hash=_other_name_hash(algorithm))
            assert send(url, wrong) == UNAUTHORIZED, (send.__name__, nonce)


def test_the_other_hash_algorithms_name_hash_under_this_key_hash_is_unauthorized(ocsp: Ocsp, url: str) -> None:
    """A SHA-256 CertID whose name hash is the SHA-256 of the right name is answered; one whose name hash is the
    SHA-1 one padded to 32 octets (or any other 32 octets) is not: the name hash is checked per algorithm."""
    certificate = ocsp.ca.issue(["name-hash-mixed.example.com"]).certificate
    ocsp.signer.presign_new()
    issuer = _issuer(ocsp)
    name = issuer.subject.public_bytes()
    padded = hashlib.sha1(name).digest() + b"\x00" * 12  # noqa: S324
    assert _post(url, _request(certificate, issuer, hashes.SHA256(), name_hash=padded)) == UNAUTHORIZED
    wrong_sha1 = hashlib.sha1(name + b"\x00").digest()  # noqa: S324
    assert _post(url, _request(certificate, issuer, SHA1, name_hash=wrong_sha1)) == UNAUTHORIZED


def test_openssl_ocsp_naming_an_issuer_with_the_same_key_and_another_name_is_unauthorized(
    ocsp: Ocsp, url: str, tmp_path: Path
) -> None:
    """openssl builds the CertID from ``-issuer``: a certificate with tls-e1's public key and another subject (signed
    by a throwaway key: openssl ocsp reads only its name and key to build the request)."""
    certificate = ocsp.ca.issue(["name-hash-openssl.example.com"]).certificate
    ocsp.signer.presign_new()
    issuer = _issuer(ocsp)
    throwaway = ec.generate_private_key(ec.SECP256R1())
    now = ocsp.ca.clock.now()
    impostor = (
        x509.CertificateBuilder()
        .subject_name(OTHER_NAME)
        .issuer_name(OTHER_NAME)
        .public_key(issuer.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(throwaway, hashes.SHA256())
    )
    (tmp_path / "issuer.pem").write_bytes(issuer.public_bytes(Encoding.PEM))
    (tmp_path / "impostor.pem").write_bytes(impostor.public_bytes(Encoding.PEM))
    serial = f"0x{certificate.serial_number:x}"
    for digest in ("-sha1", "-sha256"):
        for nonce in ("-no_nonce", "-nonce"):
            # -serial: the CertID names -issuer's subject (with -cert, openssl takes the certificate's issuer name)
            common = [digest, "-serial", serial, "-url", f"{url}/ocsp/tls-e1", nonce, "-noverify"]
            result = openssl("ocsp", "-issuer", tmp_path / "issuer.pem", *common)
            assert f"{serial}: good" in result.stdout, (digest, nonce, result.stdout + result.stderr)
            result = openssl("ocsp", "-issuer", tmp_path / "impostor.pem", *common)
            assert "Responder Error: unauthorized (6)" in result.stdout + result.stderr, (digest, nonce, result.stdout)


def test_a_wrong_name_hash_with_a_nonce_is_not_signed_on_demand(ocsp: Ocsp) -> None:
    """With ``nonce = "sign"`` the responder signs for the request: never for a CertID that is not its issuer's."""
    certificate = ocsp.ca.issue(["name-hash-nonce.example.com"]).certificate
    ocsp.signer.presign_new()
    issuer = _issuer(ocsp)
    settings = OcspSettings(nonce="sign")
    signing = NonceSigner(ocsp.ca.db, ocsp.ca.stores, ocsp.ca.clock, settings, actor="test")
    try:
        with serving(OcspApp(ocsp.index, settings, clock=ocsp.ca.clock, on_demand=signing)) as base:
            for algorithm in ALGORITHMS:
                right = _request(certificate, issuer, algorithm, nonce=b"fedcba9876543210")
                assert _good(_post(base, right))
                wrong = _request(
                    certificate, issuer, algorithm, nonce=b"fedcba9876543210", name_hash=_other_name_hash(algorithm)
                )
                assert _post(base, wrong) == UNAUTHORIZED
                assert _get(base, wrong) == UNAUTHORIZED
    finally:
        signing.close()


def test_an_index_filled_from_the_database_checks_the_name_hash_too(ocsp: Ocsp) -> None:
    """The entries a serving worker loads at start-up (and those Redis hands over) carry the same check."""
    from candor.revocation.ocsp.index import load_from_database

    certificate = ocsp.ca.issue(["name-hash-loaded.example.com"]).certificate
    ocsp.signer.presign_new()
    loaded = ResponseIndex()
    load_from_database(ocsp.ca.db, loaded)
    issuer = _issuer(ocsp)
    with serving(OcspApp(loaded, ocsp.settings, clock=ocsp.ca.clock)) as base:
        for algorithm in ALGORITHMS:
            wrong = _request(certificate, issuer, algorithm, name_hash=_other_name_hash(algorithm))
            assert _post(base, wrong) == UNAUTHORIZED
            assert _good(_post(base, _request(certificate, issuer, algorithm)))


@pytest.mark.parametrize("size", [19, 21, 32])
def test_a_sha1_cert_id_whose_name_hash_is_not_20_octets_is_malformed(size: int) -> None:
    """An issuerNameHash of another length than its hash algorithm's output names no issuer: malformedRequest, as for
    an issuerKeyHash of the wrong length."""
    from candor.revocation.ocsp import der
    from candor.revocation.ocsp.index import Malformed, parse_request
    from candor.revocation.ocsp.responses import request_for

    cert_id = der.sequence(der.SHA1_ALGORITHM, der.octet_string(b"\x01" * size), der.octet_string(b"\x02" * 20),
                           der.integer(12345))  # fmt: skip
    with pytest.raises(Malformed):
        parse_request(request_for(cert_id))
    right = der.sequence(der.SHA1_ALGORITHM, der.octet_string(b"\x01" * 20), der.octet_string(b"\x02" * 20),
                         der.integer(12345))  # fmt: skip
    assert parse_request(request_for(right)).serial == 12345
