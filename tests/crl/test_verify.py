"""Relying parties' view: OpenSSL and GnuTLS (a second implementation) check certificates against the
published shard CRLs (issue 6, acceptance 1)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from crl_support import crldp_url, generator_for, revoke_certificate, shard_in, shard_path
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from issuing import CA, build_home, open_ca

from candor.revocation import RevocationReason
from candor.revocation.crl.generate import CrlGenerator


def _issue_pair(ca: CA, generator: CrlGenerator, tmp_path: Path) -> tuple[Path, Path, Path, Path, Path]:
    """A revoked and a good certificate in the same shard (issued until they share one), their CRL as PEM,
    the root and the issuing CA."""
    first = ca.issue(["first.verify.example.com"]).certificate
    shard = shard_in(crldp_url(first))
    good = None
    for attempt in range(200):
        candidate = ca.issue([f"good{attempt}.verify.example.com"]).certificate
        if shard_in(crldp_url(candidate)) == shard:
            good = candidate
            break
    assert good is not None
    revoke_certificate(ca, first, RevocationReason.KEY_COMPROMISE)
    generator.generate_all(generator.issuer_id("tls-e1"))
    crl = x509.load_der_x509_crl(shard_path(ca, shard).read_bytes())
    paths = []
    for name, data in (
        ("revoked.pem", first.public_bytes(Encoding.PEM)),
        ("good.pem", good.public_bytes(Encoding.PEM)),
        ("shard.crl.pem", crl.public_bytes(Encoding.PEM)),
    ):
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    public = ca.home / "public" / "issuers"
    return paths[0], paths[1], paths[2], public / "root-x1.pem", public / "tls-e1.pem"


def test_openssl_marks_the_revoked_certificate_revoked_and_the_other_ok(
    ca: CA, generator: CrlGenerator, tmp_path: Path
) -> None:
    revoked, good, crl, root, issuing = _issue_pair(ca, generator, tmp_path)
    at = str(int(ca.clock.now().timestamp()) + 60)

    def verify(certificate: Path) -> subprocess.CompletedProcess[str]:
        command = ["openssl", "verify", "-attime", at, "-crl_check", "-CAfile", str(root), "-untrusted"]
        command += [str(issuing), "-CRLfile", str(crl), str(certificate)]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    bad = verify(revoked)
    assert bad.returncode != 0 and "certificate revoked" in bad.stdout + bad.stderr
    ok = verify(good)
    assert ok.returncode == 0 and ok.stdout.strip().endswith(": OK"), ok.stdout + ok.stderr


def test_gnutls_certtool_agrees(tmp_path: Path) -> None:
    if shutil.which("certtool") is None:
        pytest.skip("GnuTLS certtool is not installed (Debian: gnutls-bin)")
    # certtool has no --attime: it checks at the system's time, so this CA's clock is the system's.
    ca = open_ca(build_home(tmp_path / "home"), now=datetime.now(UTC))
    try:
        revoked, good, crl, root, issuing = _issue_pair(ca, generator_for(ca), tmp_path)
        _certtool_checks(revoked, good, crl, root, issuing, tmp_path)
    finally:
        ca.stores.close()
        ca.db.dispose()


def _certtool_checks(revoked: Path, good: Path, crl: Path, root: Path, issuing: Path, tmp_path: Path) -> None:
    def verify(certificate: Path) -> subprocess.CompletedProcess[str]:
        chain = tmp_path / "chain.pem"
        chain.write_bytes(certificate.read_bytes() + issuing.read_bytes())
        command = ["certtool", "--verify", "--load-ca-certificate", str(root), "--load-crl", str(crl)]
        command += ["--infile", str(chain)]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    bad = verify(revoked)
    assert bad.returncode != 0 and "revoked" in (bad.stdout + bad.stderr).lower(), bad.stdout + bad.stderr
    ok = verify(good)
    assert ok.returncode == 0 and "Chain verification output: Verified" in ok.stdout, ok.stdout + ok.stderr
