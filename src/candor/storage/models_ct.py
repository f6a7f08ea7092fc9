"""The CT log's records (RFC 6962): logs, entries, the issuers their chains name, tree tiles and tree heads.

An entry row is written, in the same transaction as its leaf index, before its SCT leaves the log: an SCT is
a promise to include the entry (RFC 6962 3), so a returned SCT always has a durable entry behind it. The tiles
hold the Merkle tree (C2SP tlog-tiles layout) as of the newest tree head, written in that head's transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from candor.storage.models import Base, BigId
from candor.storage.types import UTCDateTime


class CtLog(Base):
    """One log: its name, its key (by the ceremony's key record) and how many entries it has sequenced."""

    __tablename__ = "ct_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    log_id: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)  # RFC 6962 3.2: SHA-256 of the key's SPKI
    key_id: Mapped[int] = mapped_column(Integer, ForeignKey("keys.id"))
    size: Mapped[int] = mapped_column(BigInteger)  # entries sequenced: the next leaf index
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CtIssuer(Base):
    """A certificate named in some submitted chain, stored once (static-ct-api ``issuer/<fingerprint>``)."""

    __tablename__ = "ct_issuers"

    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)  # SHA-256 of the DER
    der: Mapped[bytes] = mapped_column(LargeBinary)


class CtEntry(Base):
    """A logged certificate or precertificate at its leaf index, with what its SCT said."""

    __tablename__ = "ct_entries"
    __table_args__ = (
        UniqueConstraint("ct_log_id", "identity_hash"),  # one entry per certificate: resubmissions dedupe
        Index("ix_ct_entries_ct_log_id_leaf_hash", "ct_log_id", "leaf_hash"),  # get-proof-by-hash (RFC 6962 4.5)
    )

    ct_log_id: Mapped[int] = mapped_column(Integer, ForeignKey("ct_logs.id"), primary_key=True)
    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    identity_hash: Mapped[bytes] = mapped_column(LargeBinary(32))  # SHA-256(entry_type || signed_entry)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))  # RFC 6962 2.1: SHA-256(0x00 || MerkleTreeLeaf)
    timestamp: Mapped[int] = mapped_column(BigInteger)  # the SCT's, ms since the epoch
    entry_type: Mapped[int] = mapped_column(SmallInteger)  # RFC 6962 3.1 LogEntryType
    leaf_input: Mapped[bytes] = mapped_column(LargeBinary)  # the MerkleTreeLeaf (RFC 6962 3.4)
    precertificate: Mapped[bytes | None] = mapped_column(LargeBinary)  # the submitted precertificate
    chain: Mapped[bytes] = mapped_column(LargeBinary)  # the issuers' fingerprints, 32 bytes each, leaf excluded
    sct_signature: Mapped[bytes] = mapped_column(LargeBinary)  # DER ECDSA, so a resubmission gets the same SCT


class CtTile(Base):
    """A Merkle tree tile (C2SP tlog-tiles): up to 256 hashes of height 8 * level; partial until full."""

    __tablename__ = "ct_tiles"

    ct_log_id: Mapped[int] = mapped_column(Integer, ForeignKey("ct_logs.id"), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tile_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hashes: Mapped[bytes] = mapped_column(LargeBinary)


class CtTreeHead(Base):
    """A signed tree head (RFC 6962 3.5)."""

    __tablename__ = "ct_tree_heads"
    __table_args__ = (Index("ix_ct_tree_heads_ct_log_id_tree_size", "ct_log_id", "tree_size"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ct_log_id: Mapped[int] = mapped_column(Integer, ForeignKey("ct_logs.id"))
    tree_size: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[int] = mapped_column(BigInteger)  # ms since the epoch
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signature: Mapped[bytes] = mapped_column(LargeBinary)  # DER ECDSA over the TreeHeadSignature
