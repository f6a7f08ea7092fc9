"""Issue 6 acceptance 3 through `candor serve`: after a revocation, a CRL containing the serial is served at the
URL the certificate's CRLDP names within the configured delay, with a higher CRLNumber; `openssl verify
-crl_check` with that CRL calls the certificate revoked."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest
from acme_clients import LoopbackPool, Served, serving
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from support import openssl, run_cli

pytestmark = pytest.mark.slow
DELAY = 2  # [crl] revocation_delay_seconds for this test


def _crl_at(url: str) -> x509.CertificateRevocationList | None:
    assert url.startswith("http://127.0.0.1:")
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (checked just above)
            return x509.load_der_x509_crl(response.read())
    except OSError:
        return None


def _wait_for(url: str, accept: object, seconds: float) -> x509.CertificateRevocationList:
    deadline = time.monotonic() + seconds
    while True:
        crl = _crl_at(url)
        if crl is not None and accept(crl):  # type: ignore[operator]
            return crl
        assert time.monotonic() < deadline, f"no acceptable CRL at {url} within {seconds} s"
        time.sleep(0.25)


def _issue(served: Served, work: Path) -> tuple[x509.Certificate, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("crl.example.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    work.mkdir(parents=True, exist_ok=True)
    (work / "req.pem").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    chain = work / "chain.pem"
    result = run_cli(
        "--data-dir", served.home, "issue", "--csr", work / "req.pem", "--issuer", "tls-e1", "--out", chain
    )
    assert result.code == 0, result.err
    return x509.load_pem_x509_certificates(chain.read_bytes())[0], chain


def test_a_revocation_reaches_the_served_crl_within_the_delay(tmp_path: Path) -> None:
    replacements = {"revocation_delay_seconds = 60": f"revocation_delay_seconds = {DELAY}"}
    with serving(tmp_path, (), LoopbackPool(first=110, last=119), replacements=replacements) as served:
        leaf, chain = _issue(served, tmp_path / "work")
        cdp = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        url = cdp[0].full_name[0].value  # type: ignore[index]
        assert url.startswith("http://127.0.0.1:") and "/crl/tls-e1/" in url
        before = _wait_for(url, lambda crl: True, 30)  # a shard never published is published at once
        assert before.get_revoked_certificate_by_serial_number(leaf.serial_number) is None
        number_before = before.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

        revoked = run_cli(
            "--data-dir", served.home, "revoke", "--issuer", "tls-e1", "--serial", f"{leaf.serial_number:x}",
            "--reason", "keyCompromise",
        )  # fmt: skip
        assert revoked.code == 0, revoked.err
        started = time.monotonic()
        after = _wait_for(
            url, lambda crl: crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None, 30
        )
        assert time.monotonic() - started <= DELAY + 5
        assert after.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > number_before
        idp = after.extensions.get_extension_for_class(x509.IssuingDistributionPoint)
        assert idp.critical and idp.value.full_name[0].value == url  # type: ignore[index]

        crl_file = tmp_path / "served.crl.pem"
        crl_file.write_bytes(after.public_bytes(serialization.Encoding.PEM))
        leaf_file = tmp_path / "leaf.pem"
        leaf_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        issuers = tmp_path / "issuers.pem"
        issuers.write_bytes(
            b"".join(
                c.public_bytes(serialization.Encoding.PEM)
                for c in x509.load_pem_x509_certificates(chain.read_bytes())[1:]
            )
        )
        verified = openssl(
            "verify", "-crl_check", "-CAfile", served.root_pem, "-untrusted", issuers, "-CRLfile", crl_file, leaf_file
        )
        assert verified.returncode != 0 and "certificate revoked" in verified.stdout + verified.stderr
