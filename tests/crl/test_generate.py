"""What a shard's CRL says, and that a failed check publishes nothing."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta

import pytest
from crl_support import crldp_url, published, revoke_certificate, shard_in, shard_path
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from issuing import BASE_URL, CA, csr_for
from sqlalchemy import select, update
from starlette.testclient import TestClient

from candor.errors import CandorError, ErrorKind
from candor.issuance import IssuanceSettings, IssuerResolver, Signer
from candor.revocation import RevocationReason
from candor.revocation.crl import shard_urls
from candor.revocation.crl.checks import findings
from candor.revocation.crl.generate import CrlGenerator
from candor.server.app import ServerState, create_app
from candor.storage import serial_to_hex
from candor.storage.models import AuditEvent, SerialRecord


def test_revoked_certificate_is_listed_with_its_reason_under_a_critical_idp_equal_to_its_crldp(
    ca: CA, generator: CrlGenerator
) -> None:
    certificate = ca.issue(["revoked.example.com"]).certificate
    revoke_certificate(ca, certificate, RevocationReason.KEY_COMPROMISE)
    generator.generate_all(generator.issuer_id("tls-e1"))
    url = crldp_url(certificate)
    crl = published(ca, shard_in(url))

    entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.key_compromise
    idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint)
    assert idp.critical and idp.value.only_contains_user_certs and not idp.value.indirect_crl
    # BR 7.2.2.1: byte for byte: the IA5String of the CRLDP extension's DER is in the IDP's DER.
    crldp_der = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value.public_bytes()
    uri = b"\x86" + bytes((len(url),)) + url.encode()
    assert uri in crldp_der and uri in idp.value.public_bytes()
    assert crl.issuer.public_bytes() == certificate.issuer.public_bytes()
    assert crl.next_update_utc is not None and crl.next_update_utc - crl.last_update_utc == timedelta(days=7)
    assert crl.last_update_utc == ca.clock.now().replace(microsecond=0)
    issuer = x509.load_der_x509_certificate((ca.home / "public" / "issuers" / "tls-e1.der").read_bytes())
    assert crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]


def test_unspecified_has_no_reason_code_and_other_shards_do_not_list_the_serial(
    ca: CA, generator: CrlGenerator
) -> None:
    certificate = ca.issue(["unspecified.example.com"]).certificate
    revoke_certificate(ca, certificate, RevocationReason.UNSPECIFIED)
    generator.generate_all(generator.issuer_id("tls-e1"))
    shard = shard_in(crldp_url(certificate))
    entry = published(ca, shard).get_revoked_certificate_by_serial_number(certificate.serial_number)
    assert entry is not None and len(entry.extensions) == 0  # BR 7.2.2: no reasonCode for unspecified
    for other in range(16):
        if other != shard:
            assert published(ca, other).get_revoked_certificate_by_serial_number(certificate.serial_number) is None


def test_crl_numbers_strictly_increase_across_runs_and_generators(ca: CA, generator: CrlGenerator) -> None:
    issuer_id = generator.issuer_id("tls-e1")
    first = generator.generate_all(issuer_id)
    ca.clock.advance(timedelta(minutes=1))
    second = CrlGenerator(
        db=ca.db,
        issuers=IssuerResolver(ca.stores, base_url=BASE_URL),
        clock=ca.clock,
        public_dir=ca.home / "public",
        settings=generator.settings,
        actor="another",
    ).generate_all(issuer_id)
    numbers = [r.number for r in first + second]
    assert numbers == sorted(set(numbers))
    for shard in range(16):
        assert published(ca, shard).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == (
            second[shard].number
        )


def test_a_precertificate_without_a_final_certificate_is_listed(ca: CA, generator: CrlGenerator) -> None:
    def crash(stage: str, _order: int) -> None:
        if stage == "precertificate":
            raise RuntimeError("crash after the precertificate")

    signer = Signer(
        db=ca.db,
        issuers=IssuerResolver(ca.stores, base_url=BASE_URL),
        clock=ca.clock,
        settings=IssuanceSettings(base_url=BASE_URL, validity=timedelta(days=90)),
        actor="test",
        on_phase=crash,
    )
    holder = ca.account("acct-1")
    ca.authorize(holder, "precert-only.example.com", method="3.2.2.4.7")
    with pytest.raises(RuntimeError):
        signer.finalize(ca.order(holder, ["precert-only.example.com"]), csr_for(["precert-only.example.com"]))
    with ca.db.session() as session:
        serial = session.scalars(select(SerialRecord).order_by(SerialRecord.id.desc()).limit(1)).one()
    precertificate = x509.load_der_x509_certificate(_precert_der(ca, serial.id))
    revoke_certificate(ca, precertificate, RevocationReason.SUPERSEDED)
    generator.generate_all(generator.issuer_id("tls-e1"))
    crl = published(ca, shard_in(crldp_url(precertificate)))
    assert crl.get_revoked_certificate_by_serial_number(precertificate.serial_number) is not None


def _precert_der(ca: CA, serial_id: int) -> bytes:
    from candor.storage import orders

    with ca.db.session() as session:
        return orders.certificate_der(session, serial_id, "precertificate")


def test_published_crls_are_pkilint_clean_and_parse_with_openssl(ca: CA, generator: CrlGenerator) -> None:
    certificate = ca.issue(["lint.example.com"]).certificate
    revoke_certificate(ca, certificate, RevocationReason.CESSATION_OF_OPERATION)
    generator.generate_all(generator.issuer_id("tls-e1"))
    path = shard_path(ca, shard_in(crldp_url(certificate)))
    assert findings(path.read_bytes()) == []
    issuer = ca.home / "public" / "issuers" / "tls-e1.pem"
    result = subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", str(path), "-CAfile", str(issuer), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "verify OK" in result.stderr, result.stderr
    assert "Cessation Of Operation" in result.stdout and "Issuing Distribution Point: critical" in result.stdout


def test_ccadb_json_lists_exactly_the_urls_certificates_carry(ca: CA, generator: CrlGenerator) -> None:
    certificate = ca.issue(["ccadb.example.com"]).certificate
    generator.generate_all(generator.issuer_id("tls-e1"))
    listed = json.loads((ca.home / "public" / "crl" / "tls-e1" / "ccadb.json").read_text())
    assert listed == shard_urls(BASE_URL, "tls-e1", 16)
    assert crldp_url(certificate) in listed


def test_a_failed_check_publishes_nothing_and_is_audited(ca: CA, generator: CrlGenerator) -> None:
    certificate = ca.issue(["hold.example.com"]).certificate
    revoke_certificate(ca, certificate, RevocationReason.SUPERSEDED)
    issuer_id = generator.issuer_id("tls-e1")
    generator.generate_all(issuer_id)
    shard = shard_in(crldp_url(certificate))
    before = shard_path(ca, shard).read_bytes()
    with ca.db.session() as session:  # a certificateHold entry in the store: BR 7.2.2 forbids it on a CRL
        session.execute(
            update(SerialRecord)
            .where(SerialRecord.serial_hex == serial_to_hex(certificate.serial_number))
            .values(revocation_reason=6)
        )
    ca.clock.advance(timedelta(minutes=1))
    issuer = generator.prepare(issuer_id)
    with pytest.raises(CandorError) as refused:
        generator.generate_shard(issuer, shard)
    assert refused.value.kind is ErrorKind.LINT and "BR 7.2.2" in refused.value.message
    assert shard_path(ca, shard).read_bytes() == before
    with ca.db.session() as session:
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
        assert (last.action, last.outcome, last.subject) == ("crl.refused", "failure", f"tls-e1/{shard}")
        session.execute(update(SerialRecord).where(SerialRecord.revocation_reason == 6).values(revocation_reason=4))


def test_served_over_http_with_caching_headers(ca: CA, generator: CrlGenerator) -> None:
    generator.generate_all(generator.issuer_id("tls-e1"))
    state = ServerState(db=ca.db, clock=ca.clock, public_dir=ca.home / "public", base_url=BASE_URL)
    with TestClient(create_app(state)) as client:
        response = client.get("/crl/tls-e1/3.crl")
        assert response.status_code == 200 and response.headers["content-type"] == "application/pkix-crl"
        assert response.content == shard_path(ca, 3).read_bytes()
        assert response.headers["cache-control"] == "public, max-age=300"
        assert "last-modified" in response.headers
        again = client.get("/crl/tls-e1/3.crl", headers={"if-none-match": response.headers["etag"]})
        assert again.status_code == 304
        assert client.get("/crl/tls-e1/ccadb.json").json() == shard_urls(BASE_URL, "tls-e1", 16)
        assert client.get("/crl/tls-e1/99.crl").status_code == 404
        assert client.get("/crl/tls-e1/..crl").status_code == 404


def test_der_matches_what_cryptography_would_encode(ca: CA, generator: CrlGenerator) -> None:
    """The entries written directly are the bytes cryptography's builder writes for the same entries."""
    certificate = ca.issue(["der.example.com"]).certificate
    revoke_certificate(ca, certificate, RevocationReason.AFFILIATION_CHANGED)
    generator.generate_all(generator.issuer_id("tls-e1"))
    crl = published(ca, shard_in(crldp_url(certificate)))
    ours = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
    assert ours is not None
    theirs = (
        x509.RevokedCertificateBuilder()
        .serial_number(certificate.serial_number)
        .revocation_date(ours.revocation_date_utc)
        .add_extension(x509.CRLReason(x509.ReasonFlags.affiliation_changed), critical=False)
        .build()
    )
    built = (
        x509.CertificateRevocationListBuilder(revoked_certificates=[theirs])
        .issuer_name(crl.issuer)
        .last_update(crl.last_update_utc)
        .next_update(crl.next_update_utc)  # type: ignore[arg-type]
        .sign(_throwaway(), None)
    )
    assert built.public_bytes(Encoding.DER).find(_entry_bytes(built)) > 0
    assert _entry_bytes(built) in crl.tbs_certlist_bytes


def _throwaway():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.generate()


def _entry_bytes(crl: x509.CertificateRevocationList) -> bytes:
    from candor.revocation.crl.der import children

    revoked = children(crl.tbs_certlist_bytes)[5]
    return children(revoked)[0]
