"""``candor ct audit``'s memory of each log it reads (RFC 6962 5.3, monitors; 5.4, auditors).

``ct_audit_state``: the newest signed tree head verified for a log, and the compact range (the roots of the
perfect subtrees, RFC 6962 2.1, that make up the tree of that size) so that the next run appends the new
entries to it and checks their root without fetching the log again from the start. ``ct_audit_seen``: which of
Candor's own precertificates and certificates were found in which log, and where, so that the check "every
SCT Candor embedded was honoured within the maximum merge delay" (RFC 6962 3) does not need the log's old
entries again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from candor.storage.models import Base, BigId
from candor.storage.types import UTCDateTime


class CtAuditState(Base):
    """The newest tree head of one log whose signature, consistency and entries the audit verified."""

    __tablename__ = "ct_audit_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    log_id: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)  # RFC 6962 3.2: SHA-256 of the log's key
    log_description: Mapped[str] = mapped_column(String(200))  # for the operator
    tree_size: Mapped[int] = mapped_column(BigInteger)  # RFC 6962 3.5 tree_size
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))  # sha256_root_hash
    timestamp: Mapped[int] = mapped_column(BigInteger)  # the tree head's, ms since the epoch
    compact_range: Mapped[bytes] = mapped_column(LargeBinary)  # 32-byte subtree roots, largest (leftmost) first
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CtAuditSeen(Base):
    """A stored precertificate or certificate of Candor's found in a log, at a leaf index."""

    __tablename__ = "ct_audit_seen"
    __table_args__ = (UniqueConstraint("log_id", "certificate_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    log_id: Mapped[bytes] = mapped_column(LargeBinary(32))
    certificate_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("certificates.id"))
    leaf_index: Mapped[int] = mapped_column(BigInteger)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
