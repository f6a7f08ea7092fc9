"""The CRL generator's state (BR 4.9.7, 7.2; RFC 5280 5.2.3).

``crl_issuers``: one row per issuer with CRLs: the number of shards its certificates' CRLDPs were built with
(fixed once the first CRL is published; a changed ``issuers.crl_shards`` is refused, since certificates already
name their shard) and the CRLNumber counter, advanced by ``UPDATE ... SET last_number = last_number + 1
RETURNING last_number`` so that two generators racing never draw the same number. ``crl_shards``: one row per
(issuer, shard): the CRL served now (its number, thisUpdate, nextUpdate, digest), and two revision counters:
``revision`` is bumped by every revocation in the shard, ``published_revision`` is the value read before the
served CRL's entries were read, so the shard is dirty exactly while ``revision > published_revision``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from candor.storage.models import Base
from candor.storage.types import UTCDateTime


class CrlIssuerState(Base):
    """An issuer's CRL counter and its fixed shard count."""

    __tablename__ = "crl_issuers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuers.id"), unique=True)
    shards: Mapped[int] = mapped_column(Integer)
    last_number: Mapped[int] = mapped_column(BigInteger)  # the last CRLNumber drawn (RFC 5280 5.2.3)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CrlShard(Base):
    """One shard of an issuer's CRL: what is published for it, and whether a revocation has made it stale."""

    __tablename__ = "crl_shards"
    __table_args__ = (UniqueConstraint("issuer_id", "shard"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuers.id"))
    shard: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(BigInteger)  # bumped by each revocation of a serial in this shard
    published_revision: Mapped[int | None] = mapped_column(BigInteger)
    number: Mapped[int | None] = mapped_column(BigInteger)  # CRLNumber of the CRL served now
    this_update: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_update: Mapped[datetime | None] = mapped_column(UTCDateTime)
    entries: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))  # of the published DER
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
