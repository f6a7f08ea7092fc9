"""Pre-signed OCSP responses (RFC 6960 2.5 "pre-produced responses"; RFC 5019): one current response per
issued serial, found by the request's SHA-1 issuerKeyHash and the serial, re-signed when the serial's status
changes or when ``refresh_at`` (at most half the validity, BR 4.9.10) comes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from candor.storage.models import Base, BigId, one_of
from candor.storage.types import UTCDateTime

OCSP_STATUSES = ("good", "revoked")


class OcspResponseRecord(Base):
    """The current signed response for one serial (DER ``OCSPResponse``), with what the HTTP layer sends."""

    __tablename__ = "ocsp_responses"
    __table_args__ = (
        UniqueConstraint("serial_id"),
        UniqueConstraint("issuer_key_sha1", "serial_hex"),  # the request's lookup key (RFC 6960 4.1.1 CertID)
        Index("ix_ocsp_responses_refresh_at", "refresh_at"),
        Index("ix_ocsp_responses_this_update", "this_update"),  # what the workers that follow the signer read
        CheckConstraint(one_of("status", OCSP_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    serial_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("serials.id"))
    issuer_key_sha1: Mapped[bytes] = mapped_column(LargeBinary(20))
    serial_hex: Mapped[str] = mapped_column(String(40))
    # What the response says, compared with the serial's status and reason to find responses to re-sign.
    status: Mapped[str] = mapped_column(String(16))
    revocation_reason: Mapped[int | None] = mapped_column(Integer)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    etag: Mapped[str] = mapped_column(String(64))  # hex SHA-256 of der
    this_update: Mapped[datetime] = mapped_column(UTCDateTime)
    next_update: Mapped[datetime] = mapped_column(UTCDateTime)
    refresh_at: Mapped[datetime] = mapped_column(UTCDateTime)
    responder_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("ocsp_responders.id"))  # None: the CA
