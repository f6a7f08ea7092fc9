"""Pre-signed responses: what they say (RFC 6960 4.2), when they are made and refreshed (BR 4.9.9, 4.9.10),
who signs them (BR 7.1.2.8), checked by cryptography, openssl and pkilint."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp as x509_ocsp
from issuing import build_home, open_ca  # type: ignore[import-not-found]
from ocsp_support import Ocsp, issuer_of, response_for, revoke_and_resign, revoke_only
from sqlalchemy import delete, select

from candor.audit import AuditLog
from candor.revocation import RevocationReason, revoke
from candor.revocation.ocsp import presign
from candor.revocation.ocsp.index import ResponseIndex, load_from_database
from candor.revocation.ocsp.lint import response_findings
from candor.revocation.ocsp.presign import OcspSigner, serial_key
from candor.revocation.ocsp.settings import OcspSettings
from candor.storage import repositories
from candor.storage.models import CertificateRecord, SerialRecord
from candor.storage.models_ocsp import OcspResponseRecord
from candor.storage.serials import serial_to_hex


def test_a_new_certificate_gets_a_good_response_signed_by_the_delegated_responder(ocsp: Ocsp) -> None:
    certificate = ocsp.ca.issue(["good.example.com"]).certificate
    assert ocsp.signer.presign_new() >= 1
    response = response_for(ocsp, certificate)
    assert response.response_status is ocsp_status("SUCCESSFUL")
    singles = list(response.responses)
    assert [s.hash_algorithm.name for s in singles] == ["sha1", "sha256"]
    assert all(s.certificate_status is x509_ocsp.OCSPCertStatus.GOOD for s in singles)
    assert all(s.serial_number == certificate.serial_number for s in singles)
    # BR 4.9.10: 8 hours to 10 days (3 days by default); producedAt = thisUpdate = the clock
    single = singles[0]
    assert single.this_update_utc == ocsp.ca.clock.now() == response.produced_at_utc
    assert single.next_update_utc is not None
    assert single.next_update_utc - single.this_update_utc == timedelta(days=3)
    # responderID byKey; certs carries the delegated responder (EKU OCSPSigning, ocsp-nocheck, BR 7.1.2.8)
    (responder,) = response.certificates
    assert response.responder_name is None
    assert response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(responder.public_key()).digest
    assert list(responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING
    ]
    responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    issuer = issuer_of(ocsp, certificate)
    responder.verify_directly_issued_by(issuer)
    key = responder.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
    assert [f for f in response_findings(response.public_bytes(_der())) if f[0] in ("FATAL", "ERROR")] == []
    # nothing left to sign: a second pass signs nothing
    assert ocsp.signer.presign_new() == 0


def test_a_precertificate_without_its_final_certificate_is_answered_like_a_certificate(ocsp: Ocsp) -> None:
    certificate = ocsp.ca.issue(["precert-only.example.com"]).certificate
    with ocsp.ca.db.session() as session:
        issuer = repositories.issuer_by_name(session, "tls-e1")
        assert issuer is not None
        serial = repositories.serial_by_value(session, issuer, certificate.serial_number)
        assert serial is not None
        # WS-14c / BR 7.1.2.9: the final certificate never came; the precertificate binds the serial
        session.execute(
            delete(CertificateRecord).where(
                CertificateRecord.serial_id == serial.id, CertificateRecord.kind == "certificate"
            )
        )
        session.execute(delete(OcspResponseRecord).where(OcspResponseRecord.serial_id == serial.id))
    ocsp.signer.presign_new()
    statuses = {s.certificate_status for s in response_for(ocsp, certificate).responses}
    assert statuses == {x509_ocsp.OCSPCertStatus.GOOD}


def test_revocation_is_signed_at_once_with_its_reason_and_time(ocsp: Ocsp) -> None:
    certificate = ocsp.ca.issue(["revoked.example.com"]).certificate
    ocsp.signer.presign_new()
    with ocsp.ca.db.session() as session:
        issuer = repositories.issuer_by_name(session, "tls-e1")
        assert issuer is not None
        revoked = revoke(
            session, audit=AuditLog(ocsp.ca.clock), actor="test", issuer=issuer, serial=certificate.serial_number,
            reason=RevocationReason.KEY_COMPROMISE, now=ocsp.ca.clock.now(),
        )  # fmt: skip
    assert revoked == [serial_key("tls-e1", certificate.serial_number)]
    assert ocsp.signer.on_revoked(revoked) == 1
    for single in response_for(ocsp, certificate).responses:
        assert single.certificate_status is x509_ocsp.OCSPCertStatus.REVOKED
        assert single.revocation_reason is x509.ReasonFlags.key_compromise
        assert single.revocation_time_utc == ocsp.ca.clock.now()


def test_a_revocation_made_elsewhere_is_found_by_the_next_pass(ocsp: Ocsp) -> None:
    certificate = ocsp.ca.issue(["revoked-by-cli.example.com"]).certificate
    ocsp.signer.presign_new()
    revoke_only(ocsp, certificate.serial_number, RevocationReason.SUPERSEDED, actor="cli")
    assert ocsp.signer.presign_new() >= 1
    (single, _) = response_for(ocsp, certificate).responses
    assert single.revocation_reason is x509.ReasonFlags.superseded


def test_responses_are_refreshed_after_half_their_validity_and_never_outlive_the_responder(ocsp: Ocsp) -> None:
    certificate = ocsp.ca.issue(["refresh.example.com"]).certificate
    ocsp.signer.presign_new()
    first = response_for(ocsp, certificate).produced_at_utc
    ocsp.ca.clock.advance(timedelta(hours=35))
    ocsp.signer.presign_new(limit=100_000)
    assert response_for(ocsp, certificate).produced_at_utc == first
    ocsp.ca.clock.advance(timedelta(hours=2))  # 37 h > 36 h, half of 72 h (BR 4.9.10)
    ocsp.signer.presign_new(limit=100_000)
    assert response_for(ocsp, certificate).produced_at_utc == ocsp.ca.clock.now()


def test_the_no_nonce_request_for_a_serial_is_indexed_as_the_bytes_clients_send(ocsp: Ocsp) -> None:
    certificate = ocsp.ca.issue(["indexed.example.com"]).certificate
    ocsp.signer.presign_new()
    request = (
        x509_ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer_of(ocsp, certificate), hashes.SHA1()).build()  # noqa: S303
    )
    raw = request.public_bytes(_der())
    assert ocsp.index.by_request[raw].der == response_for(ocsp, certificate).public_bytes(_der())
    sha256 = x509_ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer_of(ocsp, certificate), hashes.SHA256())
    assert ocsp.index.by_request[sha256.build().public_bytes(_der())] is ocsp.index.by_request[raw]


def _der() -> Encoding:
    return Encoding.DER


def ocsp_status(name: str) -> x509_ocsp.OCSPResponseStatus:
    return x509_ocsp.OCSPResponseStatus[name]


def test_the_template_makes_the_bytes_the_field_by_field_encoder_makes(ocsp: Ocsp) -> None:
    """Pre-signing splices the serial into per-batch templates (candor.revocation.ocsp.template); the result must be,
    byte for byte, what ResponseBuilder.build encodes field by field, for every serial length (1 to 20 octets), for
    good, revoked with a reason and revoked unspecified, with one CertID and with two."""
    from cryptography.hazmat.primitives.asymmetric import ec as ec_keys

    from candor.revocation.ocsp import der
    from candor.revocation.ocsp.responses import GOOD, ResponseBuilder, Status
    from candor.revocation.ocsp.template import BatchSigner

    issuer = issuer_of(ocsp, ocsp.ca.issue(["template.example.com"]).certificate)
    key = ec_keys.generate_private_key(ec_keys.SECP256R1())
    now = ocsp.ca.clock.now()
    statuses = (GOOD, Status(), Status(now - timedelta(hours=1), 1), Status(now, 0))  # GOOD: BatchSigner.good
    for sha256 in (False, True):
        builder = ResponseBuilder(issuer=issuer, key=key, responder_certificate=issuer, sha256_cert_ids=sha256)
        batch = BatchSigner(builder, now, now + timedelta(days=3))
        for size in range(1, 21):
            serial = int.from_bytes(bytes([0x7F] + [0xA5] * (size - 1)), "big")
            content = der.integer_content(serial)
            assert len(content) == size
            for status in statuses:
                spliced = batch.sign(content, status)
                reference = x509_ocsp.load_der_ocsp_response(
                    builder.build(serial, status, this_update=now, next_update=now + timedelta(days=3))
                )
                parsed = x509_ocsp.load_der_ocsp_response(spliced)
                assert parsed.tbs_response_bytes == reference.tbs_response_bytes, (sha256, size, status)
                signature = der.bit_string(parsed.signature)
                rebuilt = der.tlv(0x30, parsed.tbs_response_bytes + builder.algorithm + signature + builder.certs)
                assert spliced == der.successful_response(rebuilt)  # the outer template too, byte for byte
                key.public_key().verify(parsed.signature, parsed.tbs_response_bytes, ec_keys.ECDSA(hashes.SHA256()))


def test_presign_all_reads_each_serial_once_in_passes_that_go_on_from_the_last(
    ocsp: Ocsp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bulk passes walk the serials' primary key, each from where the last stopped: with passes of 2, every due
    serial is read once and signed once, and the run stops after the first short pass."""
    for index in range(5):
        ocsp.ca.issue([f"bulk{index}.example.com"])
    monkeypatch.setattr(presign, "BULK_BATCH", 2)
    reads: list[list[int]] = []
    original = presign.run

    def recorded(connection: object, statement: object, params: object = None) -> object:
        rows = original(connection, statement, params)  # type: ignore[arg-type]
        if statement is presign._RECENT:
            reads.append([row[0] for row in rows])
        return rows

    monkeypatch.setattr(presign, "run", recorded)
    signed = ocsp.signer.presign_all()
    read = [serial_id for batch in reads for serial_id in batch]
    assert signed >= 5
    assert len(read) == len(set(read)) >= signed  # no serial read twice (some are the roots', with no responder)
    assert read == sorted(read)
    assert [len(batch) for batch in reads[:-1]] == [2] * (len(reads) - 1) and len(reads[-1]) < 2
    assert ocsp.signer.presign_new() == 0  # nothing left due


@pytest.mark.postgres
def test_on_postgresql_new_refreshed_and_revoked_responses_are_written_and_read_back(
    postgres_schema_url: str, tmp_path: Path
) -> None:
    """The bulk writer's INSERT and UPDATE (psycopg takes named parameters, SQLite positional ones) on PostgreSQL."""
    home = build_home(tmp_path / "home", database=postgres_schema_url)
    ca = open_ca(home, now=datetime.now(UTC).replace(microsecond=0))
    try:
        index = ResponseIndex()
        signer = OcspSigner(ca.db, ca.stores, ca.clock, OcspSettings(), actor="test", sinks=[index])
        ocsp = Ocsp(ca=ca, signer=signer, index=index, settings=signer.settings)
        certificate = ca.issue(["postgres.example.com"]).certificate
        assert signer.presign_new() >= 1  # INSERT
        first = response_for(ocsp, certificate).produced_at_utc
        ca.clock.advance(timedelta(hours=37))
        assert signer.presign_new(limit=100_000) >= 1  # UPDATE at refresh
        assert response_for(ocsp, certificate).produced_at_utc == ca.clock.now() > first
        revoke_and_resign(ocsp, certificate.serial_number, RevocationReason.SUPERSEDED)  # UPDATE of the status
        stored = Ocsp(ca=ca, signer=signer, index=ResponseIndex(), settings=signer.settings)
        load_from_database(ca.db, stored.index)
        read_back = response_for(stored, certificate)
        assert read_back.public_bytes(_der()) == response_for(ocsp, certificate).public_bytes(_der())
        assert {s.revocation_reason for s in read_back.responses} == {x509.ReasonFlags.superseded}
        revoked_at = ca.clock.now()
        assert {s.revocation_time_utc for s in read_back.responses} == {revoked_at}  # as the driver gives it
        ca.clock.advance(timedelta(hours=37))
        assert signer.presign_all() >= 2  # the bulk passes' statements; the revoked response re-signed as revoked
        assert {s.revocation_time_utc for s in response_for(ocsp, certificate).responses} == {revoked_at}
    finally:
        ca.stores.close()
        ca.db.dispose()


def test_a_pass_with_nothing_due_reads_without_the_write_lock(ocsp: Ocsp) -> None:
    """candor serve runs a pass twice a second beside the ACME writers: its scan is a read-only transaction, and
    what it stores goes through the database's write queue, so a pass with nothing due neither waits for SQLite's
    one write lock nor takes it (it used to BEGIN IMMEDIATE outside the queue and wait in SQLite's busy handler)."""
    ocsp.ca.issue(["quiet.example.com"])
    ocsp.signer.presign_new()  # now nothing is due
    assert ocsp.ca.db.dialect == "sqlite"
    passes: list[int] = []
    with ocsp.ca.db.connection():  # another writer holds the write lock
        thread = threading.Thread(target=lambda: passes.append(ocsp.signer.presign_new()), daemon=True)
        thread.start()
        thread.join(5)
    assert passes == [0]


def _forget_response(ocsp: Ocsp, serial: int) -> None:
    """Delete a serial's stored response, as if it had never been signed."""
    with ocsp.ca.db.connection() as connection:
        serial_id = connection.execute(
            select(SerialRecord.id).where(SerialRecord.serial_hex == serial_to_hex(serial))
        ).scalar_one()
        connection.execute(delete(OcspResponseRecord).where(OcspResponseRecord.serial_id == serial_id))


def test_short_passes_read_new_serials_and_the_full_scan_every_minute_finds_the_rest(
    ocsp: Ocsp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass costs what is new, not every certificate ever issued: between full scans it reads the serials
    from the last full scan's newest on (RECENT_SLACK 0 here) and the responses due for refresh."""
    monkeypatch.setattr(presign, "RECENT_SLACK", 0)
    old = ocsp.ca.issue(["old.example.com"]).certificate
    assert ocsp.signer.presign_new() >= 1  # the first pass is a full scan
    _forget_response(ocsp, old.serial_number)
    assert ocsp.signer.presign_new() == 0  # below the range short passes read
    new = ocsp.ca.issue(["new.example.com"]).certificate
    assert ocsp.signer.presign_new() == 1  # the new certificate, from the range
    assert {s.certificate_status for s in response_for(ocsp, new).responses} == {x509_ocsp.OCSPCertStatus.GOOD}
    ocsp.ca.clock.advance(presign.FULL_SCAN_EVERY)
    assert ocsp.signer.presign_new() == 1  # the full scan finds the old one (the only serial without a response)
    assert response_for(ocsp, old).produced_at_utc == ocsp.ca.clock.now()


def test_a_revocation_recorded_elsewhere_makes_the_next_pass_a_full_scan(
    ocsp: Ocsp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(presign, "RECENT_SLACK", 0)
    certificate = ocsp.ca.issue(["revoked-later.example.com"]).certificate
    ocsp.signer.presign_new()
    assert ocsp.signer.presign_new() == 0
    revoke_only(ocsp, certificate.serial_number, RevocationReason.KEY_COMPROMISE, actor="cli")
    assert ocsp.signer.presign_new() == 1  # below the short passes' range: found by the full scan it caused
    (single, _) = response_for(ocsp, certificate).responses
    assert single.certificate_status is x509_ocsp.OCSPCertStatus.REVOKED
