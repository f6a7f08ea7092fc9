"""The schema of the RA's records the signer re-checks, and of the issuance cycle itself.

Accounts own authorizations and orders; an authorization says that one account proved control of one
identifier by one BR method at one time; an issuance is the signer's record of intent for one (issuer,
serial), written before anything is signed. Nothing here is trusted because the caller says so: the signer
reads these rows itself (DESIGN.md, "The signer re-checks").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from candor.storage.models import Base, BigId, SerialRecord, one_of
from candor.storage.types import UTCDateTime

ACCOUNT_KINDS = ("acme", "portal", "operator")
ACCOUNT_STATUSES = ("valid", "deactivated", "revoked")
IDENTIFIER_TYPES = ("dns", "ip")
AUTHORIZATION_STATUSES = ("pending", "valid", "invalid", "deactivated", "expired", "revoked")
ORDER_STATUSES = ("pending", "ready", "processing", "valid", "invalid")  # RFC 8555 7.1.6
ISSUANCE_STATES = ("intent", "precertificate", "final-intent", "complete", "failed")


class Account(Base):
    """A subscriber (ACME account, portal customer) or an operator issuing on a private CA."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint(one_of("kind", ACCOUNT_KINDS), name="kind"),
        CheckConstraint(one_of("status", ACCOUNT_STATUSES), name="status"),
        Index("ix_accounts_created_ip", "created_ip", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(128), unique=True)  # e.g. "operator:alice"
    key_thumbprint: Mapped[str | None] = mapped_column(String(64), unique=True)  # RFC 7638, for ACME
    contact: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of URIs
    jwk: Mapped[str | None] = mapped_column(Text)  # the account key as a public JWK (RFC 7517), for ACME
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_ip: Mapped[str | None] = mapped_column(String(45))  # for the new-accounts-per-address limit


class Authorization(Base):
    """Proof that an account controls an identifier (BR 3.2.2.4 / 3.2.2.5), bound to that account only."""

    __tablename__ = "authorizations"
    __table_args__ = (
        CheckConstraint(one_of("identifier_type", IDENTIFIER_TYPES), name="identifier_type"),
        CheckConstraint(one_of("status", AUTHORIZATION_STATUSES), name="status"),
        CheckConstraint(
            "status <> 'valid' OR (method IS NOT NULL AND validated_at IS NOT NULL)", name="valid_has_proof"
        ),
        Index("ix_authorizations_account_identifier", "account_id", "identifier_value"),
        Index("ix_authorizations_account_pending", "account_id", "status", "expires_at"),  # the pending limit
        Index("ix_authorizations_identifier", "identifier_value"),  # failed validations per name
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    identifier_type: Mapped[str] = mapped_column(String(8))
    identifier_value: Mapped[str] = mapped_column(String(253))  # normalised: A-labels, RFC 5952 IPv6
    wildcard: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    method: Mapped[str | None] = mapped_column(String(32))  # BR method, e.g. "3.2.2.4.19", or "operator"
    validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When CAA last allowed issuance for this name (BR 3.2.2.8: rechecked at finalization when older than 8 h).
    caa_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Order(Base):
    """What an account asked for: identifiers, a profile, an issuer."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(one_of("status", ORDER_STATUSES), name="status"),
        Index("ix_orders_replaces", "replaces"),
        Index("ix_orders_account_created", "account_id", "created_at"),  # orders per account, the orders list
        Index("ix_orders_status_updated", "status", "updated_at"),  # the start-up reconcile's stale claims
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    status: Mapped[str] = mapped_column(String(16))
    identifiers: Mapped[str] = mapped_column(Text)  # canonical JSON list of {"type", "value"}, sorted
    profile: Mapped[str] = mapped_column(String(16))  # dv, ov, ev
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuers.id"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    replaces: Mapped[str | None] = mapped_column(String(255))  # RFC 9773 certID of the certificate it renews


class Issuance(Base):
    """The signer's record for one (issuer, serial): intent first, then each signed stage.

    ``precert_tbs`` and ``final_tbs`` are the exact TBSCertificates that were linted; signing always signs
    these stored bytes, so a retry after a crash produces the same TBS, never a second different one.
    """

    __tablename__ = "issuances"
    __table_args__ = (
        CheckConstraint(one_of("state", ISSUANCE_STATES), name="state"),
        Index("ix_issuances_state", "state"),  # the start-up reconcile's unfinished issuances
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    serial_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("serials.id"), unique=True)
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    profile: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    precert_tbs: Mapped[bytes] = mapped_column(LargeBinary)
    precert_tbs_sha256: Mapped[str] = mapped_column(String(64))
    scts: Mapped[bytes | None] = mapped_column(LargeBinary)  # TLS-encoded SignedCertificateTimestampList
    final_tbs: Mapped[bytes | None] = mapped_column(LargeBinary)
    final_tbs_sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    serial: Mapped[SerialRecord] = relationship(lazy="joined")


class BlockedKey(Base):
    """A public key that must never be certified again (reported compromised, or known weak)."""

    __tablename__ = "blocked_keys"

    spki_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IssuedName(Base):
    """One registered domain (eTLD+1, PSL ICANN section) named by a completed issuance: the fact behind the
    certificates-per-registered-domain rate limit."""

    __tablename__ = "issued_names"
    __table_args__ = (Index("ix_issued_names_domain_time", "registered_domain", "issued_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    registered_domain: Mapped[str] = mapped_column(String(253))
    issuance_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("issuances.id"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
