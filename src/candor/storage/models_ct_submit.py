"""CA-side CT submission records: final certificates still owed to a log (RFC 6962 4.1 add-chain).

A final certificate's SCTs are embedded, so its own submission is not needed for browsers to accept it, but
it completes the public record; a log that is down when the certificate is issued gets it later. One row per
(certificate, log), written before the first attempt, so a restart loses nothing: ``drain`` retries rows that
are not done and whose ``next_attempt_at`` has come.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from candor.storage.models import Base, BigId
from candor.storage.types import UTCDateTime


class CtSubmission(Base):
    """A final certificate's submission to one log: pending until the log returned a verified SCT."""

    __tablename__ = "ct_submissions"
    __table_args__ = (
        UniqueConstraint("serial_id", "log_id"),  # submitting the same certificate again reuses the row
        Index("ix_ct_submissions_done_next_attempt_at", "done", "next_attempt_at"),  # what drain() reads
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    serial_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("serials.id"))  # the issuer and the serial
    log_id: Mapped[bytes] = mapped_column(LargeBinary(32))  # RFC 6962 3.2 LogID: SHA-256 of the log's key
    log_description: Mapped[str] = mapped_column(String(200))  # for the operator
    certificate_sha256: Mapped[str] = mapped_column(String(64))  # hex SHA-256 of the final certificate's DER
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    done: Mapped[bool] = mapped_column(Boolean)
    sct_timestamp: Mapped[int | None] = mapped_column(BigInteger)  # the add-chain SCT's, once done
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
