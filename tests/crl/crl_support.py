"""Helpers for the CRL tests: revoke through candor.revocation, find a certificate's shard, read a CRL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from issuing import BASE_URL, CA

from candor.audit import AuditLog
from candor.issuance import IssuerResolver
from candor.keys import KeyAlgorithm
from candor.revocation import RevocationReason, revoke
from candor.revocation.crl import shard_url
from candor.revocation.crl.generate import CrlGenerator, CrlSettings
from candor.storage import repositories


def generator_for(ca: CA, **settings: object) -> CrlGenerator:
    return CrlGenerator(
        db=ca.db,
        issuers=IssuerResolver(ca.stores, base_url=BASE_URL),
        clock=ca.clock,
        public_dir=ca.home / "public",
        settings=CrlSettings(base_url=BASE_URL, **settings),  # type: ignore[arg-type]
        actor="test",
    )


def revoke_certificate(
    ca: CA, certificate: x509.Certificate, reason: RevocationReason, *, issuer_name: str = "tls-e1"
) -> None:
    with ca.db.session() as session:
        issuer = repositories.issuer_by_name(session, issuer_name)
        assert issuer is not None
        revoke(
            session,
            audit=AuditLog(ca.clock),
            actor="test",
            issuer=issuer,
            serial=certificate.serial_number,
            reason=reason,
            now=ca.clock.now(),
        )


def crldp_url(certificate: x509.Certificate) -> str:
    points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert len(points) == 1 and points[0].full_name is not None and len(points[0].full_name) == 1
    value: str = points[0].full_name[0].value
    return value


def shard_in(url: str) -> int:
    return int(url.rsplit("/", 1)[1].removesuffix(".crl"))


def published(ca: CA, shard: int, issuer: str = "tls-e1") -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(shard_path(ca, shard, issuer).read_bytes())


def shard_path(ca: CA, shard: int, issuer: str = "tls-e1") -> Path:
    return ca.home / "public" / "crl" / issuer / f"{shard}.crl"


def timestamp_certificate(ca: CA, *, serial: int, valid_for: timedelta = timedelta(days=365)) -> x509.Certificate:
    """A Timestamp certificate issued by the time-stamping CA tsa-ca1 and stored as issued (standing in for the
    TSA's own issuance): EKU timeStamping only and critical (RFC 3161 2.3), its CRLDP the time-stamping CA's one
    CRL, ``shard_url(base, "tsa-ca1", 0)``."""
    with ca.db.session() as session:
        issuer = repositories.issuer_by_name(session, "tsa-ca1")
        assert issuer is not None
        issuer_certificate = x509.load_der_x509_certificate(issuer.certificate_der)
        key = ca.stores.get(issuer.key.store).load(issuer.key.handle, KeyAlgorithm(issuer.key.algorithm))
    now = ca.clock.now()
    url = x509.UniformResourceIdentifier(shard_url(BASE_URL, "tsa-ca1", 0))
    crldp = x509.DistributionPoint([url], relative_name=None, reasons=None, crl_issuer=None)
    usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    subject_key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Candor test TSA {serial:x}")]))
        .issuer_name(issuer_certificate.subject)
        .public_key(subject_key.public_key())
        .serial_number(serial)
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.CRLDistributionPoints([crldp]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_certificate.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(key, hashes.SHA384())  # type: ignore[arg-type]
    )
    with ca.db.session() as session:
        issuer = repositories.issuer_by_name(session, "tsa-ca1")
        assert issuer is not None
        reserved = repositories.reserve_serial(session, issuer=issuer, serial=serial, created_at=now)
        der = certificate.public_bytes(serialization.Encoding.DER)
        repositories.add_certificate(session, serial_record=reserved, kind="certificate", der=der, created_at=now)
    return certificate
