"""The ACME front end's own records: nonces, challenges, and which authorizations an order rests on."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from candor.storage.models import Base, BigId, one_of
from candor.storage.types import UTCDateTime

CHALLENGE_TYPES = ("http-01", "dns-01", "tls-alpn-01")
CHALLENGE_STATUSES = ("pending", "processing", "valid", "invalid")  # RFC 8555 7.1.6
EAB_KEY_STATUSES = ("active", "bound", "revoked")


class Nonce(Base):
    """An anti-replay nonce (RFC 8555 6.5): deleting the row is using it, so a nonce is used once, on any node."""

    __tablename__ = "nonces"

    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Challenge(Base):
    __tablename__ = "challenges"
    __table_args__ = (
        CheckConstraint(one_of("type", CHALLENGE_TYPES), name="type"),
        CheckConstraint(one_of("status", CHALLENGE_STATUSES), name="status"),
        Index("ix_challenges_authorization_id", "authorization_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    authorization_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("authorizations.id"))
    type: Mapped[str] = mapped_column(String(16))
    token: Mapped[str] = mapped_column(String(64), unique=True)  # RFC 8555 8.1: >= 128 bits, base64url
    status: Mapped[str] = mapped_column(String(16))
    validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)  # the problem document, JSON


class OrderAuthorization(Base):
    __tablename__ = "order_authorizations"
    __table_args__ = (Index("ix_order_authorizations_authorization", "authorization_id"),)  # refresh_orders

    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), primary_key=True)
    authorization_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("authorizations.id"), primary_key=True)


class ExternalAccountKey(Base):
    """An external account binding key identifier (RFC 8555 7.3.4), handed to a customer out of band.

    The MAC key itself is never stored: it is derived from the operator's EAB secret and the kid
    (:func:`candor.acme.eab.mac_key`), so this table holds nothing that would let a reader bind an account.
    A key binds at most one account, once.
    """

    __tablename__ = "external_account_keys"
    __table_args__ = (CheckConstraint(one_of("status", EAB_KEY_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("accounts.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    bound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
