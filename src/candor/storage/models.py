"""The database schema as typed SQLAlchemy models.

Every enumerated string column has a CHECK constraint, every constraint has a stable name (see
``NAMING_CONVENTION``), and every timestamp is timezone-aware UTC (:class:`UTCDateTime`). The schema is
created and changed only by the Alembic migrations in ``candor/storage/migrations``; a test compares the
two.

The ``keys`` table holds references to keys (store, backend, handle, public key), never private material.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from candor.storage.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The allowed values of the enumerated columns. Changing one of these needs a migration too.
KEY_BACKENDS = ("file", "pkcs11")
KEY_ALGORITHMS = ("rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256", "ecdsa-p384")
KEY_PURPOSES = ("root-ca", "tls-ca", "tsa-ca", "tsa-unit", "ocsp-responder", "ct-log")
ISSUER_KINDS = ("root", "tls", "tsa")
ISSUER_STATUSES = ("active", "retired")
SERIAL_STATUSES = ("reserved", "issued", "revoked")
REVOCATION_REASONS = (0, 1, 2, 3, 4, 5, 6, 8, 9, 10)  # RFC 5280 5.3.1 CRLReason; 7 is unused
CERTIFICATE_KINDS = ("precertificate", "certificate")
AUDIT_OUTCOMES = ("success", "failure", "info")
RESPONDER_STATUSES = ("active", "retired")

# SQLite only auto-assigns INTEGER PRIMARY KEY columns, so the 64-bit ids are plain INTEGER there.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def one_of(column: str, values: tuple[str, ...] | tuple[int, ...]) -> str:
    """SQL text for ``column IN (...)`` over literal values fixed in this module."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class KeyRecord(Base):
    """A reference to a key in a configured key store. Holds no private material."""

    __tablename__ = "keys"
    __table_args__ = (
        CheckConstraint(one_of("backend", KEY_BACKENDS), name="backend"),
        CheckConstraint(one_of("algorithm", KEY_ALGORITHMS), name="algorithm"),
        CheckConstraint(one_of("purpose", KEY_PURPOSES), name="purpose"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(128), unique=True)
    store: Mapped[str] = mapped_column(String(64))
    backend: Mapped[str] = mapped_column(String(16))
    algorithm: Mapped[str] = mapped_column(String(32))
    handle: Mapped[str] = mapped_column(String(256))
    public_key_der: Mapped[bytes] = mapped_column(LargeBinary)
    spki_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Issuer(Base):
    """A CA certificate Candor issues under (or, for a root, the self-signed anchor)."""

    __tablename__ = "issuers"
    __table_args__ = (
        CheckConstraint(one_of("kind", ISSUER_KINDS), name="kind"),
        CheckConstraint(one_of("status", ISSUER_STATUSES), name="status"),
        CheckConstraint(
            "(kind = 'root' AND parent_id IS NULL) OR (kind <> 'root' AND parent_id IS NOT NULL)",
            name="root_has_no_parent",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("issuers.id"))
    key_id: Mapped[int] = mapped_column(ForeignKey("keys.id"))
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    subject_der: Mapped[bytes] = mapped_column(LargeBinary)
    ski_hex: Mapped[str] = mapped_column(String(128))
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A private issuer is outside the Web PKI: it may issue without CT logs and on operator attestation.
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    # The number of CRL shards baked into its certificates' CRLDP (a serial's shard never changes).
    crl_shards: Mapped[int] = mapped_column(Integer, default=16)

    key: Mapped[KeyRecord] = relationship(lazy="joined")
    parent: Mapped[Issuer | None] = relationship(remote_side=[id], lazy="select")


class SerialRecord(Base):
    """One serial number under one issuer, from reservation to issuance and revocation."""

    __tablename__ = "serials"
    __table_args__ = (
        UniqueConstraint("issuer_id", "serial_hex", name="uq_serials_issuer_serial"),
        Index("ix_serials_revoked_at", "revoked_at"),  # the OCSP pre-signer's look for new revocations
        CheckConstraint(one_of("status", SERIAL_STATUSES), name="status"),
        CheckConstraint(
            "revocation_reason IS NULL OR " + one_of("revocation_reason", REVOCATION_REASONS),
            name="revocation_reason",
        ),
        CheckConstraint(
            "(status = 'revoked' AND revoked_at IS NOT NULL) "
            "OR (status <> 'revoked' AND revoked_at IS NULL AND revocation_reason IS NULL)",
            name="revoked_has_time",
        ),
        # One spelling per value (see candor.storage.serials): lowercase, whole octets, 1..20 octets.
        CheckConstraint(
            "serial_hex = lower(serial_hex) AND length(serial_hex) % 2 = 0 AND length(serial_hex) BETWEEN 2 AND 40",
            name="serial_hex_form",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuers.id"))
    serial_hex: Mapped[str] = mapped_column(String(40))
    order_ref: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revocation_reason: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    issuer: Mapped[Issuer] = relationship(lazy="joined")


class CertificateRecord(Base):
    """An issued precertificate or certificate; at most one of each per serial."""

    __tablename__ = "certificates"
    __table_args__ = (
        UniqueConstraint("serial_id", "kind", name="uq_certificates_serial_kind"),
        CheckConstraint(one_of("kind", CERTIFICATE_KINDS), name="kind"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    serial_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("serials.id"))
    kind: Mapped[str] = mapped_column(String(16))
    der: Mapped[bytes] = mapped_column(LargeBinary)
    tbs_sha256: Mapped[str] = mapped_column(String(64))
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # SHA-256 of the subject public key info: finds every certificate for a key reported compromised.
    spki_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    serial: Mapped[SerialRecord] = relationship(lazy="joined")


class OcspResponder(Base):
    """A delegated OCSP responder of an issuer (BR 7.1.2.8): its key and its current certificate.

    Rotation adds a row and retires the old one; the certificate row itself lives in ``certificates``
    under the issuer's serials, so a responder certificate's serial can never be reused by that issuer.
    """

    __tablename__ = "ocsp_responders"
    __table_args__ = (CheckConstraint(one_of("status", RESPONDER_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuers.id"))
    key_id: Mapped[int] = mapped_column(ForeignKey("keys.id"))
    certificate_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("certificates.id"), unique=True)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    key: Mapped[KeyRecord] = relationship(lazy="joined")
    certificate: Mapped[CertificateRecord] = relationship(lazy="joined")


class AuditEvent(Base):
    """One link of the hash-chained audit log (see :mod:`candor.audit`). Rows are only ever appended."""

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint(one_of("outcome", AUDIT_OUTCOMES), name="outcome"),
        CheckConstraint("seq >= 1", name="seq_positive"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(512))
    outcome: Mapped[str] = mapped_column(String(16))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditPending(Base):
    """An audit event appended but not yet chained (see :mod:`candor.audit.sequencer`): written in the caller's
    transaction without the chain's lock, with the SHA-256 of its contents; the sequencer moves it into
    ``audit_events`` (seq, prev_hash, hash) in the order it finds them committed, and deletes it here."""

    __tablename__ = "audit_pending"
    __table_args__ = (CheckConstraint(one_of("outcome", AUDIT_OUTCOMES), name="outcome"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(512))
    outcome: Mapped[str] = mapped_column(String(16))
    details: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
