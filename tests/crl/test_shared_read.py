"""Several shards generated from one read of the issuer's revoked serials (CrlGenerator.generate_shards): the same
entries as each shard's own read, a revocation recorded after that read leaves its shard due, and the signed
CRL is checked in full unless its TBS is the draft's, byte for byte."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from crl_support import crldp_url, published, revoke_certificate, shard_in
from cryptography import x509
from issuing import CA
from sqlalchemy import insert

from candor.errors import CandorError, ErrorKind
from candor.revocation import RevocationReason
from candor.revocation.crl import build, checks, state
from candor.revocation.crl.generate import CrlGenerator
from candor.storage import repositories, serial_to_hex
from candor.storage.models import SerialRecord


def _revoked_serials(ca: CA, count: int) -> None:
    now = ca.clock.now()
    with ca.db.session() as session:
        issuer = repositories.issuer_by_name(session, "tls-e1")
        assert issuer is not None
        rows = [
            {"issuer_id": issuer.id, "serial_hex": serial_to_hex(secrets.randbits(100) | 1 << 99), "status": "revoked",
             "revoked_at": now - timedelta(hours=i % 7), "revocation_reason": (0, 1, 4, 5)[i % 4],
             "expires_at": now + timedelta(days=30), "created_at": now - timedelta(days=1)}
            for i in range(count)
        ]  # fmt: skip
        session.execute(insert(SerialRecord), rows)


@pytest.mark.parametrize("wanted", [list(range(16)), [3, 5, 12]])
def test_one_read_gives_each_shard_what_its_own_read_gives(ca: CA, generator: CrlGenerator, wanted: list[int]) -> None:
    _revoked_serials(ca, 300)
    issuer = generator.prepare(generator.issuer_id("tls-e1"))
    since = ca.clock.now() - timedelta(days=1)
    with ca.db.session() as session:
        together = state.revoked_entries_of(
            session, issuer_id=issuer.id, wanted=wanted, shards=issuer.crl_shards, expired_before=since
        )
        alone = {
            shard: state.revoked_entries(
                session, issuer_id=issuer.id, shard=shard, shards=issuer.crl_shards, expired_before=since
            )
            for shard in wanted
        }
    assert set(together) == set(wanted)
    assert together == alone
    assert sum(len(entries) for entries in together.values()) >= 300 * len(wanted) // 16 // 2  # not all empty


def test_a_revocation_after_the_shared_read_leaves_its_shard_due(ca: CA, generator: CrlGenerator) -> None:
    late = ca.issue(["late.example.com"]).certificate
    shard = shard_in(crldp_url(late))
    issuer = generator.prepare(generator.issuer_id("tls-e1"))
    others = [s for s in range(issuer.crl_shards) if s != shard]
    outcomes = generator.generate_shards(issuer, [others[0], shard])
    first, result = next(outcomes)  # the shared read happened before this shard's generation
    assert first == others[0] and not isinstance(result, CandorError)
    revoke_certificate(ca, late, RevocationReason.KEY_COMPROMISE)
    (_, result), *_ = list(outcomes)
    assert not isinstance(result, CandorError) and result.published  # from the read made before the revocation
    assert published(ca, shard).get_revoked_certificate_by_serial_number(late.serial_number) is None
    assert (issuer.id, shard) in generator.due(ca.clock.now())  # dirty: regenerated within minutes
    generator.generate_shard(issuer, shard)
    assert published(ca, shard).get_revoked_certificate_by_serial_number(late.serial_number) is not None


def test_the_signed_crl_is_checked_in_full_unless_its_tbs_is_the_checked_drafts(
    ca: CA, generator: CrlGenerator
) -> None:
    generator.generate_all(generator.issuer_id("tls-e1"))
    issuer = generator.prepare(generator.issuer_id("tls-e1"))
    crl = published(ca, 0)
    idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    assert idp.full_name is not None and crl.next_update_utc is not None
    header = build.CrlHeader(
        issuer=issuer.certificate, algorithm=issuer.algorithm, url=idp.full_name[0].value,
        number=crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number,
        this_update=crl.last_update_utc, next_update=crl.next_update_utc, kind="tls",
    )  # fmt: skip
    der = (ca.home / "public" / "crl" / "tls-e1" / "0.crl").read_bytes()
    right = [_entry(revoked.serial_number) for revoked in crl]
    checks.check_signed(der, header, right)  # as published: passes in full
    wrong = [*right, _entry(1)]  # one entry more than the CRL has
    with pytest.raises(CandorError) as caught:
        checks.check_signed(der, header, wrong)
    assert caught.value.kind is ErrorKind.LINT
    with pytest.raises(CandorError):
        checks.check_signed(der, header, wrong, checked_tbs=b"another TBS")  # not the draft's: checked in full
    assert checks.check_signed(der, header, wrong, checked_tbs=crl.tbs_certlist_bytes) is not None  # the draft's


def _entry(serial: int) -> build.Entry:
    octets = serial.to_bytes(serial.bit_length() // 8 + 1, "big")  # DER INTEGER content, positive
    return build.Entry(octets, b"\x17\x0d" + b"260101000000Z", 0)
