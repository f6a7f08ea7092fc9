"""Acceptance 2: at the end of the run, every certificate and precertificate the tests issued is linted again,
independently (pkilint detects the type itself and walks its own validators), and verified by openssl as a TLS
server certificate. Candor's indexed walk of the same validators gives each the same report."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from candor.lint import is_local_url_finding, lint_detected
from candor.lint.certificates import lint_certificate
from support import ISSUED, openssl


def test_every_issued_certificate_relints_clean_and_verifies(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    issuing_tests = [item for item in request.session.items if "tests/issuance/" in str(item.path)]
    if issuing_tests:  # when the issuance tests ran, they must have left certificates to check
        assert ISSUED, "the issuance tests ran but recorded no certificate"
    problems: list[str] = []
    for index, (certificate, chain, root_pem, local_urls) in enumerate(ISSUED):
        der = certificate.public_bytes(Encoding.DER)
        report = lint_detected(der, indexed=False)
        if lint_certificate(der, report.kind) != report:
            problems.append(f"{certificate.serial_number:x}: the indexed walk's findings differ from pkilint's")
        errors = [f for f in report.errors if not (local_urls and is_local_url_finding(f))]
        if errors:
            problems.append(f"{certificate.serial_number:x}: {[str(f) for f in errors]}")
        precert = any(e.oid.dotted_string == "1.3.6.1.4.1.11129.2.4.3" for e in certificate.extensions)
        if precert:
            continue  # a precertificate is not a usable certificate; openssl rightly refuses its poison
        leaf, untrusted = tmp_path / f"{index}.pem", tmp_path / f"{index}-chain.pem"
        leaf.write_bytes(certificate.public_bytes(Encoding.PEM))
        untrusted.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in chain))
        when = str(int(certificate.not_valid_before_utc.timestamp()) + 60)
        result = openssl(
            "verify", "-x509_strict", "-purpose", "sslserver", "-attime", when,
            "-CAfile", root_pem, "-untrusted", untrusted, leaf,
        )  # fmt: skip
        if result.returncode != 0:
            problems.append(f"{certificate.serial_number:x}: openssl: {result.stdout.strip()} {result.stderr.strip()}")
    assert problems == []
