"""WS-08e / CSBR 6.8 at the CRL signer: while the clock watch distrusts the clock, no CRL is signed (its thisUpdate
comes from that clock), no CRLNumber is drawn and nothing is published; once trusted again, the due shards are."""

from __future__ import annotations

import dataclasses

import pytest
from crl_support import generator_for, shard_path
from issuing import CA
from sqlalchemy import func, select

from candor.errors import CandorError, ErrorKind
from candor.storage.models import AuditEvent
from candor.storage.models_crl import CrlIssuerState
from candor.timekeeping import ClockStatus


@dataclasses.dataclass
class Switch:
    trustworthy: bool = True

    def status(self) -> ClockStatus:
        return ClockStatus(self.trustworthy, "" if self.trustworthy else "offset 5 s over the 1 s bound")


def test_no_crl_is_signed_or_numbered_while_the_clock_is_distrusted(ca: CA) -> None:
    watch = Switch(trustworthy=False)
    generator = generator_for(ca)
    generator.clock_watch = watch
    issuer_id = generator.issuer_id("tls-e1")
    for path in (shard_path(ca, shard) for shard in range(16)):
        path.unlink(missing_ok=True)
    with ca.db.session() as session:
        numbers_before = session.scalar(select(func.coalesce(func.max(CrlIssuerState.last_number), 0)))
        intents_before = session.scalar(select(func.count()).where(AuditEvent.action == "crl.intent"))
    with pytest.raises(CandorError) as refused:
        generator.generate_all(issuer_id)
    assert refused.value.kind is ErrorKind.UNAVAILABLE and "offset" not in refused.value.message
    assert not any(shard_path(ca, shard).exists() for shard in range(16))
    with ca.db.session() as session:
        assert session.scalar(select(func.coalesce(func.max(CrlIssuerState.last_number), 0))) == numbers_before
        assert session.scalar(select(func.count()).where(AuditEvent.action == "crl.intent")) == intents_before

    watch.trustworthy = True
    results = generator.generate_all(issuer_id)
    assert len(results) == 16 and all(shard_path(ca, shard).exists() for shard in range(16))
