"""Issue 6 acceptance 1 (OCSP) through `candor serve`: a certificate the embedded default issues names the
responder in its AIA, which answers good within seconds of issuance (WS-15a), revoked with the reason after a
revocation, and never good for a serial that was never issued (WS-15b); `openssl ocsp` verifies each answer,
by POST and by GET."""

from __future__ import annotations

import base64
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from acme_clients import LoopbackPool, Served, serving
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from support import run_cli

pytestmark = pytest.mark.slow


def _issue(served: Served, work: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("ocsp.example.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    work.mkdir(parents=True, exist_ok=True)
    (work / "req.pem").write_bytes(csr.public_bytes(Encoding.PEM))
    chain = work / "chain.pem"
    result = run_cli(
        "--data-dir", served.home, "issue", "--csr", work / "req.pem", "--issuer", "tls-e1", "--out", chain
    )
    assert result.code == 0, result.err
    certificates = x509.load_pem_x509_certificates(chain.read_bytes())
    (work / "leaf.pem").write_bytes(certificates[0].public_bytes(Encoding.PEM))
    (work / "issuer.pem").write_bytes(certificates[1].public_bytes(Encoding.PEM))
    return work / "leaf.pem", work / "issuer.pem"


def _ocsp(served: Served, issuer: Path, url: str, *target: str, nonce: bool = False) -> str:
    command = ["openssl", "ocsp", "-issuer", str(issuer), *target, "-url", url, "-CAfile", str(served.root_pem),
               *(() if nonce else ("-no_nonce",)), "-resp_text"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    return result.stdout + result.stderr


def _pipelined(url: str, requests: list[bytes]) -> list[tuple[int, bytes]]:
    """*requests* written at once on one connection to *url*'s host and port; each answer's status and body."""
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(b"".join(requests))
        reader = sock.makefile("rb")
        answers = []
        for _ in requests:
            status = int(reader.readline().split()[1])
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            answers.append((status, reader.read(length)))
        return answers


def _revoke(served: Served, leaf: x509.Certificate) -> None:
    revoked = run_cli(
        "--data-dir", served.home, "revoke", "--issuer", "tls-e1", "--serial", f"{leaf.serial_number:x}",
        "--reason", "keyCompromise",
    )  # fmt: skip
    assert revoked.code == 0, revoked.err


def _until(ask: Callable[[], str], wanted: str, seconds: float) -> str:
    """Ask again until the answer contains *wanted*; return that answer."""
    deadline = time.monotonic() + seconds
    while True:
        output = ask()
        if wanted in output:
            return output
        assert time.monotonic() < deadline, f"no OCSP answer with {wanted!r} in time:\n{output}"
        time.sleep(0.25)


def test_good_then_revoked_then_unknown_serials_are_never_good(tmp_path: Path) -> None:
    with serving(tmp_path, (), LoopbackPool(first=100, last=109)) as served:
        leaf_file, issuer = _issue(served, tmp_path / "work")
        leaf = x509.load_pem_x509_certificate(leaf_file.read_bytes())
        aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        url = next(
            d.access_location.value for d in aia if d.access_method == x509.oid.AuthorityInformationAccessOID.OCSP
        )
        assert url.endswith("/ocsp/tls-e1")

        started = time.monotonic()
        ask = partial(_ocsp, served, issuer, url, "-cert", str(leaf_file))
        good = _until(ask, f"{leaf_file}: good", 30)
        assert time.monotonic() - started < 10  # WS-15a: within seconds of issuance (BR 4.9.9: 15 minutes)
        assert "Response verify OK" in good

        # The same answer by GET, the request base64 in the path (RFC 6960 A.1).
        request = tmp_path / "req.der"
        subprocess.run(
            ["openssl", "ocsp", "-issuer", str(issuer), "-cert", str(leaf_file), "-no_nonce", "-reqout", str(request)],
            capture_output=True, check=True, timeout=30,
        )  # fmt: skip
        encoded = urllib.parse.quote(base64.b64encode(request.read_bytes()).decode(), safe="")
        with urllib.request.urlopen(f"{url}/{encoded}", timeout=10) as response:  # noqa: S310 (loopback http)
            assert response.headers["Content-Type"] == "application/ocsp-response"
            assert "max-age=" in response.headers["Cache-Control"] and response.headers["ETag"]
            answer = x509.ocsp.load_der_ocsp_response(response.read())
        assert answer.certificate_status == x509.ocsp.OCSPCertStatus.GOOD
        # One port, one connection, requests pipelined: OCSP (answered by the OCSP protocol) and the rest of
        # candor serve (Starlette's routes) answer in order
        path = urllib.parse.urlsplit(url).path
        exchanged = _pipelined(url, [
            b"GET %s/%s HTTP/1.1\r\nHost: x\r\n\r\n" % (path.encode(), encoded.encode()),
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\nContent-Length: %d\r\n\r\n%s"
            % (path.encode(), len(request.read_bytes()), request.read_bytes()),
            b"GET /issuers/tls-e1.der HTTP/1.1\r\nHost: x\r\n\r\n",
        ])  # fmt: skip
        assert [status for status, _ in exchanged] == [200, 200, 200, 200]
        assert exchanged[0][1] == exchanged[2][1] and x509.ocsp.load_der_ocsp_response(exchanged[0][1])
        assert b'"status":"ok"' in exchanged[1][1].replace(b" ", b"")
        assert x509.load_der_x509_certificate(exchanged[3][1]).subject == leaf.issuer

        _revoke(served, leaf)
        answer_text = _until(ask, f"{leaf_file}: revoked", 30)
        assert "Reason: keyCompromise" in answer_text and "Revocation Time" in answer_text
        assert "Response verify OK" in answer_text

        never = _ocsp(served, issuer, url, "-serial", "0x1234567890abcdef1234")
        assert ": good" not in never and "unauthorized" in never.lower(), never  # WS-15b


def test_with_redis_configured_responses_are_shared_there(tmp_path: Path) -> None:
    """`[ocsp.redis]`: the primary publishes what it signs to Redis (real server, 127.0.0.1:6379), where other
    responder nodes find it."""
    import secrets

    redis = pytest.importorskip("redis")
    prefix = f"candor:test:{secrets.token_hex(6)}:"
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("Redis does not answer at 127.0.0.1:6379")
    shared = f'nonce = "cache"\n\n[ocsp.redis]\nurl = "redis://127.0.0.1:6379/0"\nprefix = "{prefix}"'
    try:
        with serving(tmp_path, (), LoopbackPool(first=80, last=89), replacements={'nonce = "cache"': shared}) as served:
            _issue(served, tmp_path / "work")
            deadline = time.monotonic() + 30
            while not list(client.scan_iter(f"{prefix}*")):
                assert time.monotonic() < deadline, "nothing was published to Redis"
                time.sleep(0.25)
    finally:
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        client.close()


def test_nonce_sign_answers_openssl_with_its_nonce_from_every_worker(tmp_path: Path) -> None:
    """`nonce = "sign"` under `candor serve` with two worker processes (each signs with its own key stores):
    `openssl ocsp` with its nonce (no -no_nonce) gets the nonce back, good and then revoked, and still
    unauthorized for a serial never issued. Two workers need the CT logs served elsewhere: this data directory
    has none (its issuer is private)."""
    from candor.cli.ocsp_edge import FOLLOW_SECONDS
    from candor.defaults import CONFIG_TEMPLATE

    ct_section = CONFIG_TEMPLATE[CONFIG_TEMPLATE.index("[[ct.logs]]") : CONFIG_TEMPLATE.index("# The OCSP responder")]
    assert "{" not in ct_section
    replacements = {ct_section: "", "workers = 1": "workers = 2", 'nonce = "cache"': 'nonce = "sign"'}
    with serving(tmp_path, (), LoopbackPool(first=110, last=119), replacements=replacements) as served:
        leaf_file, issuer = _issue(served, tmp_path / "work")
        leaf = x509.load_pem_x509_certificate(leaf_file.read_bytes())
        aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        url = next(
            d.access_location.value for d in aia if d.access_method == x509.oid.AuthorityInformationAccessOID.OCSP
        )
        ask = partial(_ocsp, served, issuer, url, "-cert", str(leaf_file), nonce=True)
        _until(ask, f"{leaf_file}: good", 30)  # from the primary, which signed it
        time.sleep(2 * FOLLOW_SECONDS + 1)  # the other worker reads new responses from the database every second
        for _ in range(6):  # new connections: SO_REUSEPORT spreads them over both workers
            answer = ask()
            assert "Response verify OK" in answer and f"{leaf_file}: good" in answer, answer
            assert "WARNING: no nonce in response" not in answer and "Nonce Verify error" not in answer, answer

        _revoke(served, leaf)
        answer = _until(ask, f"{leaf_file}: revoked", 30)
        assert "Reason: keyCompromise" in answer and "Response verify OK" in answer
        assert "WARNING: no nonce in response" not in answer and "Nonce Verify error" not in answer, answer

        never = _ocsp(served, issuer, url, "-serial", "0x1234567890abcdef1234", nonce=True)
        assert ": good" not in never and "unauthorized" in never.lower(), never
