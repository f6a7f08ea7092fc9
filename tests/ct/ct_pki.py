"""A throw-away PKI for the CT log tests: roots, issuing CAs, precertificates and certificates, made with
``cryptography`` (P-256 keys, as Candor's CA makes them)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LEAF_KEY = ec.generate_private_key(ec.SECP256R1())  # subscriber keys need not differ for these tests


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass
class CA:
    name: x509.Name
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    der: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.der = self.certificate.public_bytes(Encoding.DER)

    @property
    def spki_sha256(self) -> bytes:
        return hashlib.sha256(
            self.key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        ).digest()


def make_ca(
    common_name: str, parent: CA | None = None, *, ca: bool = True, eku: list[x509.ObjectIdentifier] | None = None
) -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(parent.name if parent else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=30))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    certificate = builder.sign(parent.key if parent else key, hashes.SHA256())
    return CA(_name(common_name), key, certificate)


def leaf_builder(issuer: x509.Name, serial: int, *, now: datetime = NOW) -> x509.CertificateBuilder:
    name = f"host{serial}.example.com"
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer)
        .public_key(LEAF_KEY.public_key())
        .serial_number(serial)
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )


def precertificate(issuer: CA, serial: int, *, critical: bool = True, now: datetime = NOW) -> bytes:
    """RFC 6962 3.1: the certificate-to-be with the poison extension, last."""
    builder = leaf_builder(issuer.name, serial, now=now).add_extension(x509.PrecertPoison(), critical=critical)
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(Encoding.DER)


def certificate(issuer: CA, serial: int, *, now: datetime = NOW) -> bytes:
    return leaf_builder(issuer.name, serial, now=now).sign(issuer.key, hashes.SHA256()).public_bytes(Encoding.DER)


@dataclass
class Pki:
    root: CA
    issuer: CA  # a TLS issuing CA under root
    other_root: CA  # not accepted by the log
    stranger: CA  # an issuing CA under other_root
    precert_signer: CA  # a Precertificate Signing Certificate (RFC 6962 3.1 EKU) under issuer
    not_a_ca: CA  # basicConstraints cA=FALSE, under root


def make_pki() -> Pki:
    root = make_ca("CT Test Root")
    issuer = make_ca("CT Test Issuer", root)
    other_root = make_ca("Other Root")
    return Pki(
        root=root,
        issuer=issuer,
        other_root=other_root,
        stranger=make_ca("Stranger Issuer", other_root),
        precert_signer=make_ca("Precert Signer", issuer, eku=[x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.4")]),
        not_a_ca=make_ca("Not A CA", root, ca=False),
    )
