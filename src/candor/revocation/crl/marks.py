"""The dirty-shard marker: a revocation bumps its shard's revision in the revocation's own transaction, and
the CRL loop regenerates every shard whose revision is ahead of the one its served CRL was built from (BR 4.9.7:
a new CRL within 24 hours of any revocation; Candor's loop looks every minute)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from candor.revocation.crl.shards import shard_count, shard_of
from candor.storage.models import Issuer
from candor.storage.models_crl import CrlShard


def mark_revoked(session: Session, issuer: Issuer, serial: int) -> None:
    """Record that *serial* under *issuer* was revoked (or its reason changed). A shard without a row has never
    been published, and the loop publishes it anyway."""
    shard = shard_of(serial, shard_count(issuer.kind, issuer.crl_shards))
    session.execute(
        update(CrlShard)
        .where(CrlShard.issuer_id == issuer.id, CrlShard.shard == shard)
        .values(revision=CrlShard.revision + 1)
    )
