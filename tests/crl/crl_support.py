"""Helpers for the CRL tests: revoke through candor.revocation, find a certificate's shard, read a CRL."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from issuing import BASE_URL, CA

from candor.audit import AuditLog
from candor.issuance import IssuerResolver
from candor.revocation import RevocationReason, revoke
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


def revoke_certificate(ca: CA, certificate: x509.Certificate, reason: RevocationReason) -> None:
    with ca.db.session() as session:
        issuer = repositories.issuer_by_name(session, "tls-e1")
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


def published(ca: CA, shard: int) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(shard_path(ca, shard).read_bytes())


def shard_path(ca: CA, shard: int) -> Path:
    return ca.home / "public" / "crl" / "tls-e1" / f"{shard}.crl"
