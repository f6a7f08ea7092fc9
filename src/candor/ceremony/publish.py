"""Files the ceremony publishes: CA certificates (for AIA caIssuers) and the root's CA-scope CRL."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from candor.files import write_atomically as _atomic_write
from candor.keys import CAPrivateKey, KeyAlgorithm

from .signing import verify_crl_signature


class PublicFiles:
    """The data directory's ``public/`` tree: what any static web server may serve."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def issuer_path(self, name: str) -> Path:
        return self.directory / "issuers" / f"{name}.der"

    def crl_path(self, name: str) -> Path:
        return self.directory / "crl" / f"{name}.crl"

    def write_issuer(self, name: str, certificate: x509.Certificate) -> Path:
        path = self.issuer_path(name)
        _atomic_write(path, certificate.public_bytes(Encoding.DER))
        _atomic_write(path.with_suffix(".pem"), certificate.public_bytes(Encoding.PEM))
        return path

    def write_crl(self, name: str, crl: x509.CertificateRevocationList) -> Path:
        path = self.crl_path(name)
        _atomic_write(path, crl.public_bytes(Encoding.DER))
        return path


def ca_crl(
    issuer: x509.Certificate,
    key: CAPrivateKey,
    algorithm: KeyAlgorithm,
    *,
    now: datetime,
    validity: timedelta,
    revoked: tuple[x509.RevokedCertificate, ...] = (),
) -> x509.CertificateRevocationList:
    """A full CA-scope CRL (BR 7.2): v2, AKI, CRLNumber; nextUpdate at most 12 months after thisUpdate.

    The CRL number is thisUpdate in microseconds since the epoch, so that it increases strictly across
    re-signings without shared state (the approach Boulder takes), and stays far below 2**159.
    """
    this_update = now.replace(microsecond=0)
    crl_number = int(now.timestamp() * 1_000_000)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(this_update)
        .next_update(this_update + validity)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(entry)
    crl = builder.sign(key, algorithm.signature_hash())
    verify_crl_signature(crl, issuer)
    return crl
