"""Throw-away PKI for storage tests: P-256 keys and certificates made with `cryptography`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.orm import Session

from candor.storage import Issuer, KeyRecord, add_issuer, add_key

NOW = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass
class CA:
    name: x509.Name
    key: ec.EllipticCurvePrivateKey
    der: bytes


def make_ca(common_name: str, parent: CA | None = None) -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    signer = parent.key if parent is not None else key
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name(common_name))
        .issuer_name(parent.name if parent is not None else name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(signer, hashes.SHA256())
    )
    return CA(name(common_name), key, certificate.public_bytes(serialization.Encoding.DER))


def make_leaf(ca: CA, serial: int, *, precertificate: bool = False, days: int = 90) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name("leaf.example"))
        .issuer_name(ca.name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=days))
    )
    if precertificate:
        builder = builder.add_extension(x509.PrecertPoison(), critical=True)
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def register(
    session: Session, label: str, ca: CA, *, kind: str, parent: Issuer | None = None
) -> tuple[KeyRecord, Issuer]:
    purpose = {"root": "root-ca", "tls": "tls-ca", "tsa": "tsa-ca"}[kind]
    key = add_key(
        session,
        label=f"{label}-key",
        store="main",
        backend="file",
        algorithm="ecdsa-p256",
        handle=f"{label}.key",
        public_key_der=spki(ca.key),
        purpose=purpose,
        created_at=NOW,
    )
    issuer = add_issuer(session, name=label, kind=kind, parent=parent, key=key, certificate_der=ca.der, created_at=NOW)
    return key, issuer


@dataclass
class Hierarchy:
    root_ca: CA
    tls_ca: CA
    other_ca: CA
    root: Issuer
    tls: Issuer
    other: Issuer
