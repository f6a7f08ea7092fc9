"""TSA units (CSBR 7.1.2.3, 6.1.5.2, 6.3.2): the Timestamp certificate profile, the checks that keep a unit from
signing, rotation to a unit certified ahead of time without a restart, and the 15-month key usage period."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID
from sqlalchemy import select
from tsa_support import BASE_URL, Harness, forge_unit, harness, post, read_reply, request, served, tsa_home, tst_info

from candor.clock import FakeClock
from candor.errors import CandorError
from candor.keys import KeyAlgorithm, KeyStores
from candor.profiles import IssuerInfo, timestamp_certificate, timestamp_certificate_problems
from candor.profiles.tsa import add_months
from candor.revocation.crl import shard_url
from candor.storage.models import AuditEvent
from candor.tsa.certify import UnitCertifier
from support import assert_one_line_error, run_cli


def _unit(home: Path, name: str = "tsa-ca1-unit-1") -> x509.Certificate:
    return x509.load_pem_x509_certificate((home / "public" / "tsa" / f"{name}.pem").read_bytes())


def test_the_unit_certificate_follows_the_timestamp_profile(p256_home: Path) -> None:
    unit = _unit(p256_home)
    tsa_ca = x509.load_pem_x509_certificate((p256_home / "public" / "issuers" / "tsa-ca1.pem").read_bytes())
    found = {e.oid: e for e in unit.extensions}
    assert set(found) == {
        ExtensionOID.KEY_USAGE, ExtensionOID.EXTENDED_KEY_USAGE, ExtensionOID.CERTIFICATE_POLICIES,
        ExtensionOID.CRL_DISTRIBUTION_POINTS, ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    }  # fmt: skip
    usage = found[ExtensionOID.KEY_USAGE]
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign  # type: ignore[attr-defined]
    eku = found[ExtensionOID.EXTENDED_KEY_USAGE]
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]  # type: ignore[call-overload]
    policies = [p.policy_identifier.dotted_string for p in found[ExtensionOID.CERTIFICATE_POLICIES].value]  # type: ignore[attr-defined]
    assert policies == ["2.23.140.1.4.2"]
    crldp = found[ExtensionOID.CRL_DISTRIBUTION_POINTS].value
    assert [p.full_name[0].value for p in crldp] == [shard_url(BASE_URL, "tsa-ca1", 0)]  # type: ignore[attr-defined]
    aia = found[ExtensionOID.AUTHORITY_INFORMATION_ACCESS].value
    assert [d.access_location.value for d in aia] == [f"{BASE_URL}/issuers/tsa-ca1.der"]  # type: ignore[attr-defined]
    ski = tsa_ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert found[ExtensionOID.AUTHORITY_KEY_IDENTIFIER].value.key_identifier == ski  # type: ignore[attr-defined]
    assert not any(e.critical for e in unit.extensions if e.oid not in (ExtensionOID.KEY_USAGE, eku.oid))
    # CSBR 6.8: the tokens' digest is the one that signed this certificate (tsa-ca1 is P-384: SHA-384)
    assert unit.signature_hash_algorithm is not None and unit.signature_hash_algorithm.name == "sha384"
    unit.verify_directly_issued_by(tsa_ca)
    assert unit.not_valid_after_utc <= min(add_months(unit.not_valid_before_utc, 135), tsa_ca.not_valid_after_utc)
    assert timestamp_certificate_problems(unit) == []


def _issuer() -> tuple[IssuerInfo, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP384R1())
    info = IssuerInfo(
        name=x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "TSA CA")]), public_key=key.public_key(),
        not_after=datetime(2040, 1, 1, tzinfo=UTC), certificate_url=f"{BASE_URL}/issuers/tsa-ca1.der",
        crl_url=f"{BASE_URL}/crl/tsa-ca1/0.crl",
    )  # fmt: skip
    return info, key


@pytest.mark.parametrize(
    ("key", "months", "fragment"),
    [
        (rsa.generate_private_key(65537, 2048), 120, "RSA-2048"),
        (ec.generate_private_key(ec.SECP256K1()), 120, "secp256k1"),
        (ec.generate_private_key(ec.SECP256R1()), 136, "135 months"),
    ],
)
def test_the_profile_refuses_weak_keys_and_long_validity(key: object, months: int, fragment: str) -> None:
    info, _ = _issuer()
    start = datetime(2027, 1, 1, tzinfo=UTC)
    with pytest.raises(CandorError, match=fragment):
        timestamp_certificate(
            subject=info.name, public_key=key.public_key(), serial=1, not_before=start,  # type: ignore[attr-defined]
            not_after=add_months(start, months), issuer=info,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("eku", "critical", "fragment"),
    [
        ([ExtendedKeyUsageOID.TIME_STAMPING], False, "not critical"),
        ([ExtendedKeyUsageOID.TIME_STAMPING, ExtendedKeyUsageOID.SERVER_AUTH], True, "not only id-kp-timeStamping"),
        ([ExtendedKeyUsageOID.TIME_STAMPING, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE], True, "2.5.29.37.0"),
        ([ExtendedKeyUsageOID.CODE_SIGNING], True, "not only id-kp-timeStamping"),
    ],
)
def test_a_non_compliant_extended_key_usage_is_found(
    eku: list[x509.ObjectIdentifier], critical: bool, fragment: str
) -> None:
    import dataclasses

    from candor.profiles import to_builder
    from candor.profiles.template import ext

    info, ca_key = _issuer()
    subject_key = ec.generate_private_key(ec.SECP256R1())
    start = datetime(2027, 1, 1, tzinfo=UTC)
    template = timestamp_certificate(
        subject=info.name, public_key=subject_key.public_key(), serial=7, not_before=start,
        not_after=add_months(start, 120), issuer=info,
    )  # fmt: skip
    forged = ext(x509.ExtendedKeyUsage(eku), critical=critical)
    extensions = tuple(forged if e.oid == forged.oid else e for e in template.extensions)
    from cryptography.hazmat.primitives import hashes

    certificate = to_builder(dataclasses.replace(template, extensions=extensions)).sign(ca_key, hashes.SHA384())
    problems = timestamp_certificate_problems(certificate)
    assert any(fragment in p for p in problems), problems


def test_certify_refuses_rsa_2048_in_one_line(p256_home: Path) -> None:
    result = run_cli("--data-dir", p256_home, "tsa", "certify", "--key-type", "rsa-2048")
    assert_one_line_error(result, "CSBR 6.1.5.2")
    assert result.code == 2


@pytest.fixture
def own_home(tmp_path: Path) -> Path:
    return tsa_home(tmp_path / "tsa")


def test_the_tsa_refuses_to_start_with_a_non_compliant_unit_and_refuses_one_certified_later(own_home: Path) -> None:
    with harness(own_home) as tsa:  # a compliant unit: it starts; then a bad one appears
        forge_unit(own_home, name="forged-eku", eku=[ExtendedKeyUsageOID.TIME_STAMPING], eku_critical=False)
        tsa.tsa.keeper.tick()
        assert [u.record.name for u in tsa.tsa.keeper.units.units] == ["tsa-ca1-unit-1"]
        assert _events(tsa, "tsa.unit.refuse") == ["forged-eku"]
    with pytest.raises(CandorError, match="extKeyUsage is not critical"), harness(own_home):
        pass
    result = run_cli("--data-dir", own_home, "serve", "--port", "0")
    assert_one_line_error(result, "TSA unit forged-eku", "extKeyUsage is not critical")


def _events(tsa: Harness, action: str) -> list[str]:
    with tsa.db.session() as session:
        return list(
            session.scalars(select(AuditEvent.subject).where(AuditEvent.action == action).order_by(AuditEvent.seq))
        )


def _signer(reply: bytes) -> str:
    tst = tst_info(read_reply(reply).token or b"")
    return str(tst["tsa"]["directoryName"]["rdnSequence"][-1][0]["value"])[-6:]  # "Unit 1" / "Unit 2"


def test_rotation_to_a_unit_certified_ahead_and_the_15_month_key_usage_period(own_home: Path) -> None:
    first = _unit(own_home)
    clock = FakeClock(first.not_valid_before_utc + timedelta(minutes=1))
    with harness(own_home, clock=clock) as tsa, served(tsa) as url:
        tsa.tsa.keeper.start(url)
        assert _signer(post(url, request())[2]).endswith("Unit 1")
        end_of_first = tsa.tsa.keeper.units.units[0].record.usable_until
        assert end_of_first == add_months(first.not_valid_before_utc, 15)

        # a month before the end, with no successor: an alert, once
        clock.set(end_of_first - timedelta(days=29))
        tsa.tsa.keeper.tick()
        tsa.tsa.keeper.tick()
        assert _events(tsa, "tsa.unit.rotation_due") == ["tsa-ca1-unit-1"]

        # a successor certified to start in a day: unit 1 signs until then, unit 2 after, with no restart
        stores = KeyStores(tsa.context.config.keys.stores, base_dir=own_home, environ={})
        try:
            certifier = UnitCertifier(
                tsa.db, stores, clock, issuer="tsa-ca1", base_url=BASE_URL, public_dir=own_home / "public", actor="test"
            )
            successor = certifier.certify(
                store="file", algorithm=KeyAlgorithm.ECDSA_P256, signs_from=clock.now() + timedelta(days=1)
            )
        finally:
            stores.close()
        tsa.tsa.keeper.tick()
        assert _signer(post(url, request())[2]).endswith("Unit 1")
        assert successor.not_before == clock.now().replace(microsecond=0)  # the certificate is not forward-dated
        clock.set(successor.signs_from)
        assert _signer(post(url, request())[2]).endswith("Unit 2")  # switched by the time alone
        tsa.tsa.keeper.tick()
        assert _events(tsa, "tsa.unit.switch") == ["tsa-ca1-unit-2"]
        # the old unit's certificate stays published for verifiers
        assert post(url.replace("/tsa", "/tsa/units/tsa-ca1-unit-1.der"), b"", method="GET")[0] == 200

        # unit 1's key usage period ends: retired (recorded), unit 2 signs on
        clock.set(end_of_first + timedelta(seconds=1))
        tsa.tsa.keeper.tick()
        assert _events(tsa, "tsa.unit.retire") == ["tsa-ca1-unit-1"]
        assert read_reply(post(url, request())[2]).status == 0

        # 15 months after unit 2's notBefore: one second before, a token; at the end, systemFailure and an alert
        clock.set(successor.usable_until - timedelta(seconds=1))
        assert read_reply(post(url, request())[2]).status == 0
        clock.set(successor.usable_until)
        refused = read_reply(post(url, request())[2])
        assert refused.failures == {"systemFailure"} and refused.token is None
        tsa.tsa.keeper.tick()
        assert _events(tsa, "tsa.unit.retire") == ["tsa-ca1-unit-1", "tsa-ca1-unit-2"]
        assert len(_events(tsa, "tsa.signing.refused")) == 1
        tsa.tsa.keeper.stop(url)
        assert [a for a in ("tsa.start", "tsa.stop") if _events(tsa, a)] == ["tsa.start", "tsa.stop"]


def test_a_unit_key_is_never_used_outside_its_usage_period_even_if_chosen(tsa: Harness) -> None:
    """Defence in depth: the service re-checks the chosen unit's period against the token's genTime."""
    unit = tsa.tsa.keeper.units.units[0]
    clock = FakeClock(unit.record.usable_until)
    tsa.tsa.app.service.clock = clock
    tsa.tsa.keeper.units._choice = (unit, unit.record.signs_from, datetime.max.replace(tzinfo=UTC))  # a stale choice
    reply = read_reply(asyncio.run(tsa.respond(request())))
    assert reply.failures == {"systemFailure"}


def test_a_usage_period_the_row_stretches_past_15_months_is_refused_from_the_certificate(tsa: Harness) -> None:
    """CSBR 6.3.2 is checked against the certificate, not only the tsa_units row: a row edited (or imported) to let
    the key sign until its certificate's notAfter is refused before the unit signs anything."""
    import dataclasses

    from candor.tsa.units import prepare_unit

    keeper = tsa.tsa.keeper
    record = keeper.units.units[0].record
    stretched = dataclasses.replace(record, usable_until=record.certificate.not_valid_after_utc)
    assert stretched.usable_until > add_months(record.certificate.not_valid_before_utc, 15)
    with pytest.raises(CandorError) as refused:
        prepare_unit(stretched, keeper.load_key, keeper.options)
    assert "15 months" in refused.value.message
    assert prepare_unit(record, keeper.load_key, keeper.options).record is record  # the row as certified is fine
