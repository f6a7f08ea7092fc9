"""The responder over HTTP (RFC 6960 appendix A, RFC 5019): openssl ocsp (POST) and curl (GET) with openssl
verifying, GnuTLS ocsptool as a second implementation, hostile requests, and the caching headers."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp as x509_ocsp
from ocsp_server import serving
from ocsp_support import Ocsp
from ocsp_support import issuer_certificate as _issuer
from ocsp_support import revoke_and_resign as _revoke

from candor.revocation import RevocationReason
from candor.revocation.ocsp.http import OcspApp
from support import openssl


@pytest.fixture
def url(ocsp: Ocsp) -> Iterator[str]:
    with serving(OcspApp(ocsp.index, ocsp.settings, clock=ocsp.ca.clock)) as base:
        yield base


def _pem(path: Path, certificate: x509.Certificate) -> Path:
    path.write_bytes(certificate.public_bytes(Encoding.PEM))
    return path


def test_openssl_post_says_good_revoked_with_reason_and_time_and_not_good_for_a_never_issued_serial(
    ocsp: Ocsp, url: str, tmp_path: Path
) -> None:
    good = ocsp.ca.issue(["post-good.example.com"]).certificate
    bad = ocsp.ca.issue(["post-revoked.example.com"]).certificate
    ocsp.signer.presign_new()
    _revoke(ocsp, bad.serial_number, RevocationReason.KEY_COMPROMISE)
    issuer = _pem(tmp_path / "issuer.pem", _issuer(ocsp))
    root = ocsp.ca.root_pem
    common = ["-issuer", issuer, "-CAfile", root, "-url", f"{url}/ocsp/tls-e1", "-no_nonce", "-resp_text"]
    result = openssl("ocsp", *common, "-cert", _pem(tmp_path / "good.pem", good))
    assert "Response verify OK" in result.stderr, result.stderr + result.stdout
    assert "good.pem: good" in result.stdout
    assert "Responder Id: " in result.stdout and "Cert Status: good" in result.stdout
    result = openssl("ocsp", *common, "-cert", _pem(tmp_path / "bad.pem", bad))
    assert "Response verify OK" in result.stderr
    assert "bad.pem: revoked" in result.stdout
    assert "Reason: keyCompromise" in result.stdout
    assert f"Revocation Time: {ocsp.ca.clock.now():%b %e %H:%M:%S %Y} GMT" in result.stdout
    # BR 4.9.9 / WS-15b: a serial never issued is never good; Candor answers unauthorized (RFC 6960 2.3)
    result = openssl("ocsp", *common, "-serial", "0x1234567890abcdef1234")
    assert "Responder Error: unauthorized (6)" in result.stdout + result.stderr
    assert ": good" not in result.stdout


def test_get_with_the_base64_request_verified_by_openssl_with_the_responder_as_vafile(
    ocsp: Ocsp, url: str, tmp_path: Path
) -> None:
    certificate = ocsp.ca.issue(["get.example.com"]).certificate
    ocsp.signer.presign_new()
    issuer = _pem(tmp_path / "issuer.pem", _issuer(ocsp))
    cert = _pem(tmp_path / "cert.pem", certificate)
    openssl(
        "ocsp", "-issuer", issuer, "-cert", cert, "-no_nonce", "-reqout", tmp_path / "req.der", "-req_text", check=True
    )
    raw = (tmp_path / "req.der").read_bytes()
    # RFC 6960 A.1: url-encoded base64, here without padding and with an issuer path segment
    encoded = urllib.parse.quote(base64.b64encode(raw).decode().rstrip("="), safe="")
    response = httpx.get(f"{url}/ocsp/tls-e1/{encoded}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/ocsp-response"
    (tmp_path / "resp.der").write_bytes(response.content)
    parsed = x509_ocsp.load_der_ocsp_response(response.content)
    (responder,) = parsed.certificates
    vafile = _pem(tmp_path / "responder.pem", responder)
    result = openssl(
        "ocsp", "-respin", tmp_path / "resp.der", "-reqin", tmp_path / "req.der", "-issuer", issuer, "-cert", cert,
        "-VAfile", vafile, "-resp_text",
    )  # fmt: skip
    assert "Response verify OK" in result.stderr, result.stderr
    assert "cert.pem: good" in result.stdout


def test_caching_headers_are_those_boulder_sent_and_a_matching_etag_gets_304(ocsp: Ocsp, url: str) -> None:
    certificate = ocsp.ca.issue(["cache.example.com"]).certificate
    ocsp.signer.presign_new()
    request = x509_ocsp.OCSPRequestBuilder().add_certificate(certificate, _issuer(ocsp), hashes.SHA256()).build()
    path = base64.b64encode(request.public_bytes(Encoding.DER)).decode()
    response = httpx.get(f"{url}/ocsp/{path}")
    body = response.content
    parsed = x509_ocsp.load_der_ocsp_response(body)
    single = next(s for s in parsed.responses if s.hash_algorithm.name == "sha256")  # the SHA-256 CertID too
    assert single.serial_number == certificate.serial_number
    assert response.headers["etag"] == f'"{hashlib.sha256(body).hexdigest()}"'
    assert response.headers["last-modified"] == f"{ocsp.ca.clock.now():%a, %d %b %Y %H:%M:%S} GMT"
    assert response.headers["expires"] == f"{ocsp.ca.clock.now() + timedelta(days=3):%a, %d %b %Y %H:%M:%S} GMT"
    # max-age = time to nextUpdate, capped at a day by default
    assert response.headers["cache-control"] == "max-age=86400, public, no-transform, must-revalidate"
    ocsp.ca.clock.advance(timedelta(days=2, hours=23))
    assert httpx.get(f"{url}/ocsp/{path}").headers["cache-control"].startswith("max-age=3600,")
    again = httpx.get(f"{url}/ocsp/{path}", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    # past nextUpdate the stored response is not served (BR 4.9.10): tryLater
    ocsp.ca.clock.advance(timedelta(hours=2))
    assert httpx.get(f"{url}/ocsp/{path}").content == bytes.fromhex("30030a0103")


MALFORMED = bytes.fromhex("30030a0101")
UNAUTHORIZED = bytes.fromhex("30030a0106")


def test_hostile_requests_get_an_ocsp_error_status_never_a_500(ocsp: Ocsp, url: str, tmp_path: Path) -> None:
    certificate = ocsp.ca.issue(["hostile.example.com"]).certificate
    ocsp.signer.presign_new()
    good = x509_ocsp.OCSPRequestBuilder().add_certificate(certificate, _issuer(ocsp), hashes.SHA1())  # noqa: S303
    raw = good.build().public_bytes(Encoding.DER)
    wrong_issuer = x509_ocsp.OCSPRequestBuilder().add_certificate(certificate, _issuer(ocsp, "tls-r1"), hashes.SHA1())  # noqa: S303
    post = {"content-type": "application/ocsp-request"}
    cases = {
        "garbage": (b"\x00garbage\xff" * 3, MALFORMED),
        "empty": (b"", MALFORMED),
        "truncated": (raw[:-5], MALFORMED),
        "trailing bytes": (raw + b"\x00", MALFORMED),
        "oversized": (raw + b"\x00" * 20_000, MALFORMED),
        "not a request": (certificate.public_bytes(Encoding.DER), MALFORMED),
        "unknown CertID hash": (_with_md5(raw), MALFORMED),
        "wrong issuer": (wrong_issuer.build().public_bytes(Encoding.DER), UNAUTHORIZED),
    }
    for name, (body, expected) in cases.items():
        response = httpx.post(f"{url}/ocsp", content=body, headers=post)
        assert (response.status_code, response.content) == (200, expected), name
        if len(body) < 2000:
            encoded = base64.urlsafe_b64encode(body).decode() if name == "garbage" else base64.b64encode(body).decode()
            response = httpx.get(f"{url}/ocsp/{urllib.parse.quote(encoded, safe='')}")
            assert response.status_code == 200, name
            assert response.content in (expected, MALFORMED), name
    for path in ("/ocsp/", "/ocsp/%%%", "/ocsp/not base64!", "/ocsp/" + "A" * 30_000):
        response = httpx.get(url + path)
        assert (response.status_code, response.content) == (200, MALFORMED), path
    assert httpx.put(f"{url}/ocsp", content=raw).status_code == 405
    assert httpx.get(f"{url}/elsewhere").status_code == 404
    # the well-formed request still works, and a nonce is answered from the cache (RFC 5019 2.1.1)
    assert x509_ocsp.load_der_ocsp_response(httpx.post(f"{url}/ocsp", content=raw, headers=post).content)
    nonce = good.add_extension(x509.OCSPNonce(b"0123456789abcdef"), critical=False).build()
    answered = httpx.post(f"{url}/ocsp", content=nonce.public_bytes(Encoding.DER), headers=post)
    assert x509_ocsp.load_der_ocsp_response(answered.content).response_status is x509_ocsp.OCSPResponseStatus.SUCCESSFUL


def _with_md5(raw: bytes) -> bytes:
    """The same request with the CertID's hash OID changed to 1.3.14.3.2.3 (md5WithRSA, no CertID hash)."""
    sha1 = bytes.fromhex("06052b0e03021a")
    assert sha1 in raw
    return raw.replace(sha1, bytes.fromhex("06052b0e030203"))


@pytest.mark.skipif(shutil.which("ocsptool") is None, reason="GnuTLS ocsptool (Debian gnutls-bin) is not installed")
def test_gnutls_ocsptool_agrees(ocsp: Ocsp, url: str, tmp_path: Path) -> None:
    good = ocsp.ca.issue(["gnutls-good.example.com"]).certificate
    bad = ocsp.ca.issue(["gnutls-revoked.example.com"]).certificate
    ocsp.signer.presign_new()
    _revoke(ocsp, bad.serial_number, RevocationReason.SUPERSEDED)
    issuer = _pem(tmp_path / "issuer.pem", _issuer(ocsp))
    for certificate, expected in ((good, "Certificate Status: good"), (bad, "Certificate Status: revoked")):
        cert = _pem(tmp_path / f"{certificate.serial_number}.pem", certificate)
        out = tmp_path / f"{certificate.serial_number}.der"
        result = subprocess.run(
            ["ocsptool", f"--ask={url}/ocsp/tls-e1", "--load-issuer", issuer, "--load-cert", cert,
             "--load-trust", issuer, "--outfile", out, "--no-nonce"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert "Verifying OCSP Response: Success" in result.stdout, result.stdout + result.stderr
        info = subprocess.run(["ocsptool", "--response-info", "--infile", out], capture_output=True, text=True)
        assert expected in info.stdout, info.stdout


def test_a_get_path_whose_base64_ends_in_a_slash_is_decoded_whole() -> None:
    """'/' is base64's 63rd digit: an unpadded request can end in it (about one in 64 serials did, and the
    responder once stripped it and answered malformedRequest). A DER request starts with 0x30, so base64 'M'."""
    from candor.revocation.ocsp.http import decode_get

    for data in (b"\x30\x01\x3f", b"\x30\x04\x00\x00\x00\xff", b"\x30\x02\x05\x00"):
        encoded = base64.b64encode(data).decode()
        assert decode_get(encoded.rstrip("="), 10_000) == data
        assert decode_get("/" + encoded, 10_000) == data  # a doubled slash after the prefix
        assert decode_get("tls-e1/" + urllib.parse.quote(encoded, safe=""), 10_000) == data
    assert base64.b64encode(b"\x30\x01\x3f").decode() == "MAE/"
