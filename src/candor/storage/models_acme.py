"""The ACME front end's own records: nonces, challenges, and which authorizations an order rests on."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from candor.storage.models import Base, BigId, one_of
from candor.storage.types import UTCDateTime

CHALLENGE_TYPES = ("http-01", "dns-01", "tls-alpn-01")
CHALLENGE_STATUSES = ("pending", "processing", "valid", "invalid")  # RFC 8555 7.1.6


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

    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), primary_key=True)
    authorization_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("authorizations.id"), primary_key=True)
