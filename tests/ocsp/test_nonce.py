"""Requests with a nonce (RFC 6960 4.4.1 as RFC 9654 2.1 replaces it): signed on demand with ``nonce = "sign"``,
saying what the pre-signed response says, echoing the nonce, by the same responder; answered from the cache with
``nonce = "cache"`` (RFC 5019 2.1.1) and when every signing thread is busy; a nonce of 0 or more than 128 octets
is malformedRequest in both modes."""

from __future__ import annotations

import asyncio
import json
import re
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
from ocsp_server import serving
from ocsp_support import Ocsp, issuer_of, response_for
from ocsp_support import issuer_certificate as _issuer
from ocsp_support import revoke_and_resign as _revoke
from sqlalchemy import select

from candor.revocation import RevocationReason
from candor.revocation.ocsp.http import OcspApp
from candor.revocation.ocsp.index import parse_request
from candor.revocation.ocsp.ondemand import NonceSigner
from candor.revocation.ocsp.settings import OcspSettings
from candor.storage.models import AuditEvent
from support import openssl

POST = {"content-type": "application/ocsp-request"}
MALFORMED = bytes.fromhex("30030a0101")
UNAUTHORIZED = bytes.fromhex("30030a0106")
TRY_LATER = bytes.fromhex("30030a0103")


@pytest.fixture
def signing(ocsp: Ocsp) -> Iterator[NonceSigner]:
    signer = NonceSigner(ocsp.ca.db, ocsp.ca.stores, ocsp.ca.clock, OcspSettings(nonce="sign"), actor="test")
    yield signer
    signer.close()


@pytest.fixture
def url(ocsp: Ocsp, signing: NonceSigner) -> Iterator[str]:
    app = OcspApp(ocsp.index, OcspSettings(nonce="sign"), clock=ocsp.ca.clock, on_demand=signing)
    with serving(app) as base:
        yield base


def _pem(path: Path, certificate: x509.Certificate) -> Path:
    path.write_bytes(certificate.public_bytes(Encoding.PEM))
    return path


def _ask(ocsp: Ocsp, url: str, tmp_path: Path, *target: str | Path) -> str:
    """openssl ocsp with its default nonce (16 random octets), request and response printed."""
    issuer = _pem(tmp_path / "issuer.pem", _issuer(ocsp))
    result = openssl(
        "ocsp", "-issuer", issuer, *target, "-url", f"{url}/ocsp/tls-e1", "-CAfile", ocsp.ca.root_pem,
        "-req_text", "-resp_text",
    )  # fmt: skip
    return result.stdout + result.stderr


def _nonces(output: str) -> list[str]:
    """The hex of every 'OCSP Nonce:' printed (request first, then response)."""
    return [m.replace(":", "").lower() for m in re.findall(r"OCSP Nonce:\s*\n\s*([0-9A-Fa-f:]+)", output)]


def test_openssl_verifies_the_nonce_echoed_in_a_fresh_good_response_and_a_revoked_one(
    ocsp: Ocsp, url: str, tmp_path: Path
) -> None:
    good = ocsp.ca.issue(["nonce-good.example.com"]).certificate
    bad = ocsp.ca.issue(["nonce-revoked.example.com"]).certificate
    ocsp.signer.presign_new()
    ocsp.ca.clock.advance(timedelta(seconds=5))
    _revoke(ocsp, bad.serial_number, RevocationReason.KEY_COMPROMISE)
    revoked_at = ocsp.ca.clock.now()
    ocsp.ca.clock.advance(timedelta(minutes=1))

    output = _ask(ocsp, url, tmp_path, "-cert", _pem(tmp_path / "good.pem", good))
    assert "Response verify OK" in output and "good.pem: good" in output, output
    # openssl compares the nonces (OCSP_check_nonce) and would say "Nonce Verify error" or warn of none
    assert "WARNING: no nonce in response" not in output and "Nonce Verify error" not in output
    request_nonce, response_nonce = _nonces(output)
    assert request_nonce == response_nonce and len(request_nonce) == 2 * (2 + 16)
    # signed now (producedAt), saying what the pre-signed response says (thisUpdate is the pre-signed one's)
    assert f"Produced At: {ocsp.ca.clock.now():%b %e %H:%M:%S %Y} GMT" in output
    assert f"This Update: {ocsp.ca.clock.now() - timedelta(minutes=1, seconds=5):%b %e %H:%M:%S %Y} GMT" in output

    output = _ask(ocsp, url, tmp_path, "-cert", _pem(tmp_path / "bad.pem", bad))
    assert "Response verify OK" in output and "bad.pem: revoked" in output, output
    assert "Reason: keyCompromise" in output and f"Revocation Time: {revoked_at:%b %e %H:%M:%S %Y} GMT" in output
    assert "WARNING: no nonce in response" not in output and len(set(_nonces(output))) == 1

    # BR 4.9.9: a serial never issued gets no signature, with or without a nonce
    output = _ask(ocsp, url, tmp_path, "-serial", "0x1234567890abcdef1234")
    assert "Responder Error: unauthorized (6)" in output and ": good" not in output, output


def test_with_nonce_cache_the_same_request_is_answered_from_the_cache_without_a_nonce(
    ocsp: Ocsp, tmp_path: Path
) -> None:
    certificate = ocsp.ca.issue(["nonce-cached.example.com"]).certificate
    ocsp.signer.presign_new()
    with serving(OcspApp(ocsp.index, ocsp.settings, clock=ocsp.ca.clock)) as base:
        output = _ask(ocsp, base, tmp_path, "-cert", _pem(tmp_path / "cert.pem", certificate))
    assert "Response verify OK" in output and "cert.pem: good" in output, output
    assert "WARNING: no nonce in response" in output  # RFC 5019 2.1.1: the pre-signed response, as it is


def test_the_fresh_response_is_signed_by_the_pre_signers_responder_for_the_requests_certid(
    ocsp: Ocsp, url: str
) -> None:
    certificate = ocsp.ca.issue(["nonce-sha256.example.com"]).certificate
    ocsp.signer.presign_new()
    cached = response_for(ocsp, certificate)
    builder = x509_ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer_of(ocsp, certificate), hashes.SHA256())
    request = builder.add_extension(x509.OCSPNonce(b"\x07" * 32), critical=False).build()
    answer = httpx.post(f"{url}/ocsp", content=request.public_bytes(Encoding.DER), headers=POST)
    assert answer.headers["cache-control"] == "no-store"  # for this request only
    fresh = x509_ocsp.load_der_ocsp_response(answer.content)
    assert fresh.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"\x07" * 32
    (single,) = fresh.responses
    assert single.hash_algorithm.name == "sha256" and single.serial_number == certificate.serial_number
    assert single.issuer_key_hash == request.issuer_key_hash and single.issuer_name_hash == request.issuer_name_hash
    assert fresh.responder_key_hash == cached.responder_key_hash and fresh.certificates == cached.certificates
    assert fresh.signature != cached.signature
    (responder,) = fresh.certificates
    key = responder.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(fresh.signature, fresh.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))


def test_a_nonce_of_0_or_more_than_128_octets_is_malformed_and_one_of_1_to_128_is_echoed(ocsp: Ocsp, url: str) -> None:
    """RFC 9654 2.1 (which obsoletes RFC 8954 and its limit of 32): Nonce ::= OCTET STRING (SIZE(1..128)); a server
    rejects 0 or more than 128 octets with malformedRequest."""
    certificate = ocsp.ca.issue(["nonce-sizes.example.com"]).certificate
    ocsp.signer.presign_new()
    plain = x509_ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer_of(ocsp, certificate), hashes.SHA1())  # noqa: S303
    with serving(OcspApp(ocsp.index, ocsp.settings, clock=ocsp.ca.clock)) as cached_url:
        for size in (0, 1, 33, 128, 129, 1000):
            body = (
                plain.add_extension(x509.OCSPNonce(b"\xab" * size), critical=False).build().public_bytes(Encoding.DER)
            )
            for base in (url, cached_url):
                answer = httpx.post(f"{base}/ocsp", content=body, headers=POST)
                if size in (0, 129, 1000):
                    assert answer.content == MALFORMED, (size, base)
                    continue
                response = x509_ocsp.load_der_ocsp_response(answer.content)
                nonces = [e.value.nonce for e in response.extensions if isinstance(e.value, x509.OCSPNonce)]
                assert nonces == ([b"\xab" * size] if base == url else []), (size, base)


def test_with_every_signing_thread_busy_the_pre_signed_response_answers(ocsp: Ocsp) -> None:
    certificate = ocsp.ca.issue(["nonce-busy.example.com"]).certificate
    ocsp.signer.presign_new()
    builder = x509_ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer_of(ocsp, certificate), hashes.SHA1())  # noqa: S303
    request = parse_request(
        builder.add_extension(x509.OCSPNonce(b"n" * 16), critical=False).build().public_bytes(Encoding.DER)
    )
    cached = ocsp.index.by_key[request.key]
    one = NonceSigner(ocsp.ca.db, ocsp.ca.stores, ocsp.ca.clock, OcspSettings(nonce="sign", on_demand_concurrency=1))

    async def five_at_once() -> list[bytes | None]:
        return await asyncio.gather(*(one.sign(request, cached) for _ in range(5)))

    try:
        answers = asyncio.run(five_at_once())
    finally:
        one.close()
    # the first took the only thread; the other four found it busy and were told to serve the cache
    assert answers[0] is not None and answers[1:] == [None] * 4 and one.saturated == 4
    assert x509_ocsp.load_der_ocsp_response(answers[0]).extensions.get_extension_for_class(x509.OCSPNonce)


def test_signing_on_demand_is_audited_and_a_stale_cache_gets_try_later_not_a_signature(
    ocsp: Ocsp, url: str, signing: NonceSigner
) -> None:
    certificate = ocsp.ca.issue(["nonce-audit.example.com"]).certificate
    ocsp.signer.presign_new()
    builder = x509_ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer_of(ocsp, certificate), hashes.SHA1())  # noqa: S303
    body = builder.add_extension(x509.OCSPNonce(b"a" * 20), critical=False).build().public_bytes(Encoding.DER)
    for _ in range(3):
        assert httpx.post(f"{url}/ocsp", content=body, headers=POST).headers["cache-control"] == "no-store"
    signing.close()  # writes what is counted
    with ocsp.ca.db.session() as session:
        events = [
            (e.subject, json.loads(e.details))
            for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "ocsp.sign"))
        ]
    on_demand = [(subject, details) for subject, details in events if details.get("on_demand")]
    assert on_demand and on_demand[-1][0] == "tls-e1" and on_demand[-1][1]["count"] == 3
    # past the pre-signed response's nextUpdate nothing is signed from it (BR 4.9.10): tryLater, as without a nonce
    ocsp.ca.clock.advance(timedelta(days=3, seconds=1))
    assert httpx.post(f"{url}/ocsp", content=body, headers=POST).content == TRY_LATER
