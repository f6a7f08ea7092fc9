"""Helpers for the CT audit tests: a CA issuing through two Candor logs on loopback (the CT submission tests'
end-to-end arrangement), a log served with a key the test chooses (so a second instance can fork the first),
log lists, and certificates signed with a Candor issuer's key outside the signer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from issuing import CA
from submit_support import ServedLog, log_item, operator

from candor.ct.submit.client import CtSubmitter
from candor.storage import repositories

SETTINGS = {"backoff_seconds": 0.05, "max_backoff_seconds": 0.2, "attempt_timeout_seconds": 3, "attempts": 3}
POISON = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.3")  # RFC 6962 3.1 precertificate poison


class LateSource:
    """The signer's SctSource, pointed at a submitter once the CA (and its clock and database) exists."""

    def __init__(self) -> None:
        self.target: CtSubmitter | None = None

    def obtain(self, precertificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
        assert self.target is not None
        return self.target.obtain(precertificate, issuer)


def write_log_list(path: Path, logs: Sequence[tuple[ServedLog, str]]) -> Path:
    """A v3 log list naming each (log, url), one operator per log; MMD 24 h (``log_item``'s for RFC 6962)."""
    document = {"operators": [operator(log.operator, [log_item(log.key, description=log.name, url=url)])
                              for log, url in logs]}  # fmt: skip
    path.write_text(json.dumps(document))
    return path


def issuer_certificates(ca: CA) -> list[x509.Certificate]:
    with ca.db.session() as session:
        return [x509.load_der_x509_certificate(i.certificate_der) for i in repositories.list_issuers(session)]


def rogue_certificate(ca: CA, name: str, *, precertificate: bool = False) -> tuple[x509.Certificate, x509.Certificate]:
    """A certificate (or precertificate) for *name*, signed with the issuing CA tls-e1's key straight from the
    key store: what key misuse looks like. Returns it and the issuer's certificate."""
    with ca.db.session() as session:
        record = repositories.issuer_by_name(session, "tls-e1")
        assert record is not None
        issuer = x509.load_der_x509_certificate(record.certificate_der)
        ca_key = ca.signer.issuers.by_id(session, record.id).key()
    subject_key = ec.generate_private_key(ec.SECP256R1())
    now = ca.clock.now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer.subject)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if precertificate:
        builder = builder.add_extension(x509.UnrecognizedExtension(POISON, b"\x05\x00"), critical=True)
    return builder.sign(ca_key, hashes.SHA256()), issuer  # type: ignore[arg-type]


@dataclass
class World:
    ca: CA
    logs: list[ServedLog]
    submitter: CtSubmitter
    log_list: Path
    work: Path

    def integrate(self) -> None:
        for log in self.logs:
            log.ct_log.integrate()
