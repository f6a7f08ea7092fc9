"""CRLs of the time-stamping hierarchy (CSBR 4.9.7, 7.2; TSA-07): the time-stamping CA tsa-ca1 publishes one CRL,
at the URL its Timestamp certificates name (``shard_url(base, "tsa-ca1", 0)``), on the normal schedule and within
the delay after a revocation, checked with pkilint's RFC 5280 profile, served like the others; and a revoked
Timestamp certificate stays on it 10 years after it expires."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from crl_support import crldp_url, generator_for, published, revoke_certificate, shard_path, timestamp_certificate
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from issuing import BASE_URL, CA, build_home, open_ca
from starlette.testclient import TestClient

from candor.revocation import RevocationReason
from candor.revocation.crl import shard_url
from candor.revocation.crl.checks import findings
from candor.revocation.crl.generate import TSA_KEEP_AFTER_EXPIRY, CrlGenerator
from candor.revocation.crl.schedule import CrlScheduler
from candor.server.app import ServerState, create_app

TSA_URL = shard_url(BASE_URL, "tsa-ca1", 0)


@pytest.fixture(scope="module")
def ca_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA of this module's own (the conftest's ``ca`` opens it)."""
    return build_home(tmp_path_factory.mktemp("tsa"))


def test_a_revoked_timestamp_certificate_is_on_the_one_tsa_crl_at_its_crldp_within_the_delay(
    ca: CA, generator: CrlGenerator, tmp_path: Path
) -> None:
    scheduler = CrlScheduler(generator)
    scheduler.tick()  # everything published once, the time-stamping CA included
    first = published(ca, 0, "tsa-ca1")
    # a serial whose value mod 16 (tsa-ca1's issuers.crl_shards) is not 0: the dirty marker still finds shard 0
    certificate = timestamp_certificate(ca, serial=(0x5A17 << 80) | 5)
    assert crldp_url(certificate) == TSA_URL
    ca.clock.advance(timedelta(seconds=5))
    revoked_at = ca.clock.now()
    revoke_certificate(ca, certificate, RevocationReason.KEY_COMPROMISE, issuer_name="tsa-ca1")
    assert generator.due(ca.clock.now()) == [(generator.issuer_id("tsa-ca1"), 0)]
    ca.clock.advance(generator.settings.dirty_within)
    assert [(r.issuer, r.shard) for r in scheduler.tick()] == [("tsa-ca1", 0)]

    state = ServerState(db=ca.db, clock=ca.clock, public_dir=ca.home / "public", base_url=BASE_URL)
    with TestClient(create_app(state)) as client:
        response = client.get(TSA_URL.removeprefix(BASE_URL))
        assert response.status_code == 200 and response.headers["content-type"] == "application/pkix-crl"
        assert client.get("/crl/tsa-ca1/ccadb.json").json() == [TSA_URL]
    crl = x509.load_der_x509_crl(response.content)
    entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
    assert entry is not None and entry.revocation_date_utc == revoked_at
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.key_compromise
    # the IDP names exactly the certificate's CRLDP (BR 7.2.2.1 applied alike), critical, user certificates only
    idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint)
    uri = b"\x86" + bytes((len(TSA_URL),)) + TSA_URL.encode()
    assert idp.critical and idp.value.only_contains_user_certs and uri in idp.value.public_bytes()
    assert uri in certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value.public_bytes()
    assert crl.issuer == certificate.issuer
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    # CSBR 4.9.7: nextUpdate within 12 months; Candor's 7 days
    assert crl.next_update_utc is not None and crl.next_update_utc - crl.last_update_utc == timedelta(days=7)
    issuer = x509.load_der_x509_certificate((ca.home / "public" / "issuers" / "tsa-ca1.der").read_bytes())
    assert crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    assert sorted(p.name for p in (ca.home / "public" / "crl" / "tsa-ca1").iterdir()) == ["0.crl", "ccadb.json"]
    # RFC 5280 as pkilint checks it (its CA/B Forum profile is the TLS BRs'; it has none for the CSBR)
    assert findings(response.content, "PKIX") == []

    # OpenSSL, as a relying party validating a time-stamp token's signer, calls the certificate revoked
    paths = {}
    for name, data in (
        ("tsa.pem", certificate.public_bytes(Encoding.PEM)),
        ("crl.pem", crl.public_bytes(Encoding.PEM)),
    ):
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    public = ca.home / "public" / "issuers"
    command = ["openssl", "verify", "-attime", str(int(ca.clock.now().timestamp()) + 60), "-crl_check"]
    command += ["-CAfile", str(public / "root-x1.pem"), "-untrusted", str(public / "tsa-ca1.pem")]
    command += ["-CRLfile", str(paths["crl.pem"]), str(paths["tsa.pem"])]
    verified = subprocess.run(command, capture_output=True, text=True, check=False)
    assert verified.returncode != 0 and "certificate revoked" in verified.stdout + verified.stderr


def test_a_timestamp_certificate_stays_listed_ten_years_after_expiry_where_a_tls_one_leaves_after_a_day(
    tmp_path: Path,
) -> None:
    """CSBR: revoked Timestamp certificates stay on the CRL at least 10 years after expiry; TLS entries stay one
    regeneration past expiry (BR 4.10.1, ``keep_after_expiry``). A data directory of its own: the clock runs 10
    years ahead."""
    ca = open_ca(build_home(tmp_path / "home"))
    try:
        generator = generator_for(ca)
        tls = ca.issue(["expiring.example.com"]).certificate  # 90 days
        stamp = timestamp_certificate(ca, serial=(0x7A5 << 90) | 1, valid_for=timedelta(days=30))
        revoke_certificate(ca, tls, RevocationReason.SUPERSEDED)
        revoke_certificate(ca, stamp, RevocationReason.SUPERSEDED, issuer_name="tsa-ca1")
        tls_shard = int(crldp_url(tls).rsplit("/", 1)[1].removesuffix(".crl"))

        def listed_after(delay: timedelta) -> tuple[bool, bool]:
            ca.clock.set(tls.not_valid_after_utc + delay)
            CrlScheduler(generator).tick()
            tls_crl = published(ca, tls_shard)
            stamp_crl = published(ca, 0, "tsa-ca1")
            return (
                tls_crl.get_revoked_certificate_by_serial_number(tls.serial_number) is not None,
                stamp_crl.get_revoked_certificate_by_serial_number(stamp.serial_number) is not None,
            )

        assert listed_after(timedelta(hours=1)) == (True, True)
        assert listed_after(timedelta(days=2)) == (False, True)  # the TLS entry is gone a day after expiry
        assert timedelta(days=3653) <= TSA_KEEP_AFTER_EXPIRY  # 10 years, leap days included
        ca.clock.set(stamp.not_valid_after_utc + TSA_KEEP_AFTER_EXPIRY - timedelta(days=1))
        assert published_now(ca, generator, stamp) is True
        ca.clock.set(stamp.not_valid_after_utc + TSA_KEEP_AFTER_EXPIRY + timedelta(days=1))
        assert published_now(ca, generator, stamp) is False
    finally:
        ca.stores.close()
        ca.db.dispose()


def published_now(ca: CA, generator: CrlGenerator, certificate: x509.Certificate) -> bool:
    """Whether tsa-ca1's CRL, regenerated now, lists *certificate*."""
    generator.generate_shard(generator.prepare(generator.issuer_id("tsa-ca1")), 0)
    crl = x509.load_der_x509_crl(shard_path(ca, 0, "tsa-ca1").read_bytes())
    return crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None
