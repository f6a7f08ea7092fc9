"""The time-stamping authority's tables: its units (a key and its Timestamp certificate) and every token issued.

A unit's certificate row lives in ``certificates`` under the time-stamping sub-CA's serials, so the CRL of that
CA covers it and its serial is never reused; ``tsa_units`` adds what the service needs to choose the unit that
signs now (CSBR 6.3.2: a key is used at most until ``usable_until``, 15 months after notBefore).

``tsa_tokens`` answers "did we issue this token": one row per token, written (and committed) before the token
leaves the TSA, with the serial unique across the whole TSA (RFC 3161 2.4.2). The serial is its only index: one on the
imprint (random octets, so every insert touches a random page) cost about as much CPU as the rest of the record,
so finding tokens by imprint scans the table instead.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from candor.storage.models import Base, BigId, CertificateRecord, Issuer, KeyRecord, one_of
from candor.storage.types import UTCDateTime

UNIT_STATUSES = ("active", "retired")


class TsaUnit(Base):
    """A TSA unit: a time-stamping key and its certificate from the time-stamping sub-CA."""

    __tablename__ = "tsa_units"
    __table_args__ = (
        CheckConstraint(one_of("status", UNIT_STATUSES), name="status"),
        CheckConstraint("usable_until <= not_after", name="usable_within_validity"),
        CheckConstraint("signs_from >= not_before AND signs_from < usable_until", name="signs_within_usage"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuers.id"))
    key_id: Mapped[int] = mapped_column(ForeignKey("keys.id"), unique=True)
    certificate_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("certificates.id"), unique=True)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    usable_until: Mapped[datetime] = mapped_column(UTCDateTime)  # CSBR 6.3.2: notBefore + 15 months at most
    # when the service switches to this unit: its certificate's notBefore is the signing time (never forward-dated),
    # so a unit certified ahead of a rotation waits for this moment instead
    signs_from: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    key: Mapped[KeyRecord] = relationship(lazy="joined")
    certificate: Mapped[CertificateRecord] = relationship(lazy="joined")
    issuer: Mapped[Issuer] = relationship(lazy="joined")


class TsaToken(Base):
    """One issued time-stamp token: what it attests (the imprint), when (genTime), under which policy and unit."""

    __tablename__ = "tsa_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    serial_hex: Mapped[str] = mapped_column(String(40), unique=True)  # as candor.storage.serials writes it
    unit_id: Mapped[int] = mapped_column(ForeignKey("tsa_units.id"))
    policy: Mapped[str] = mapped_column(String(128))  # dotted OID
    imprint_algorithm: Mapped[str] = mapped_column(String(64))  # dotted OID of the imprint's hash
    imprint: Mapped[bytes] = mapped_column(LargeBinary(64))
    gen_time: Mapped[datetime] = mapped_column(UTCDateTime)
