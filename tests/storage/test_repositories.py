"""Repositories over both backends; the uniqueness rules are proven at the database itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from storage_pki import NOW, Hierarchy, make_ca, make_leaf, register, spki

from candor.errors import CandorError, ErrorKind
from candor.policy.algorithms import KeyAlgorithm
from candor.storage import (
    CertificateRecord,
    Database,
    KeyRecord,
    SerialRecord,
    add_certificate,
    add_key,
    issuer_by_name,
    key_by_label,
    list_issuers,
    reserve_serial,
    serial_by_value,
    serial_to_hex,
)
from candor.storage.dberrors import unique_violation

SERIAL = 0x80A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2  # high bit set: stored with a leading 00


def _raw_serial_row(issuer_id: int, serial_hex: str) -> dict[str, object]:
    return {"issuer_id": issuer_id, "serial_hex": serial_hex, "status": "reserved", "created_at": NOW}


def test_duplicate_serial_is_refused_by_the_database(db: Database, hierarchy: Hierarchy) -> None:
    row = _raw_serial_row(hierarchy.tls.id, serial_to_hex(SERIAL))
    with db.engine.begin() as connection:
        connection.execute(insert(SerialRecord), [row])
    with pytest.raises(IntegrityError) as caught, db.engine.begin() as connection:
        connection.execute(insert(SerialRecord), [row])
    assert unique_violation(caught.value) == "uq_serials_issuer_serial"


def test_duplicate_serial_via_repository_is_a_conflict(db: Database, hierarchy: Hierarchy) -> None:
    with db.session() as session:
        reserve_serial(session, issuer=hierarchy.tls, serial=SERIAL, created_at=NOW)
    with db.session() as session:
        with pytest.raises(CandorError) as caught:
            reserve_serial(session, issuer=hierarchy.tls, serial=SERIAL, created_at=NOW)
        # the transaction survives the conflict: the caller can pick another serial
        reserve_serial(session, issuer=hierarchy.tls, serial=SERIAL + 1, created_at=NOW)
    assert caught.value.kind is ErrorKind.CONFLICT
    assert serial_to_hex(SERIAL) in str(caught.value)
    assert "tls-e1" in str(caught.value)
    with db.session() as session:
        stored = session.scalars(select(SerialRecord.serial_hex).order_by(SerialRecord.id)).all()
    assert stored == [serial_to_hex(SERIAL), serial_to_hex(SERIAL + 1)]


def test_same_serial_under_two_issuers_is_fine(db: Database, hierarchy: Hierarchy) -> None:
    with db.session() as session:
        first = reserve_serial(session, issuer=hierarchy.tls, serial=SERIAL, created_at=NOW)
        second = reserve_serial(session, issuer=hierarchy.other, serial=SERIAL, created_at=NOW, order_ref="o-2")
    assert first.id != second.id
    with db.engine.begin() as connection:
        connection.execute(insert(SerialRecord), [_raw_serial_row(hierarchy.root.id, serial_to_hex(SERIAL))])
    with db.session() as session:
        found = serial_by_value(session, hierarchy.other, SERIAL)
        assert found is not None
        assert found.order_ref == "o-2"
        assert found.serial_hex == "00" + format(SERIAL, "x")
        assert serial_by_value(session, hierarchy.tls, SERIAL + 1) is None


def test_precertificate_and_certificate_share_a_serial(db: Database, hierarchy: Hierarchy) -> None:
    precert = make_leaf(hierarchy.tls_ca, SERIAL, precertificate=True)
    final = make_leaf(hierarchy.tls_ca, SERIAL)
    with db.session() as session:
        record = reserve_serial(session, issuer=hierarchy.tls, serial=SERIAL, created_at=NOW)
        assert record.status == "reserved"
        pre = add_certificate(session, serial_record=record, kind="precertificate", der=precert, created_at=NOW)
        cert = add_certificate(session, serial_record=record, kind="certificate", der=final, created_at=NOW)
    assert pre.serial_id == cert.serial_id == record.id
    assert record.status == "issued"
    assert record.expires_at == NOW + timedelta(days=90) - timedelta(microseconds=NOW.microsecond)
    assert cert.serial.issuer.name == "tls-e1"  # the typed link, loaded eagerly


def test_second_final_certificate_is_refused(db: Database, hierarchy: Hierarchy) -> None:
    with db.session() as session:
        record = reserve_serial(session, issuer=hierarchy.tls, serial=SERIAL, created_at=NOW)
        add_certificate(
            session, serial_record=record, kind="certificate", der=make_leaf(hierarchy.tls_ca, SERIAL), created_at=NOW
        )
    another = make_leaf(hierarchy.tls_ca, SERIAL, days=30)
    with pytest.raises(CandorError) as caught, db.session() as session:
        add_certificate(session, serial_record=record, kind="certificate", der=another, created_at=NOW)
    assert caught.value.kind is ErrorKind.CONFLICT
    # and at the database, bypassing the repository
    row = {
        "serial_id": record.id,
        "kind": "certificate",
        "der": another,
        "tbs_sha256": "0" * 64,
        "fingerprint_sha256": "1" * 64,
        "not_before": NOW,
        "not_after": NOW,
        "created_at": NOW,
    }
    with pytest.raises(IntegrityError) as raw, db.engine.begin() as connection:
        connection.execute(insert(CertificateRecord), [row])
    assert unique_violation(raw.value) == "uq_certificates_serial_kind"


def test_certificate_must_match_its_serial_and_kind(db: Database, hierarchy: Hierarchy) -> None:
    with db.session() as session:
        record = reserve_serial(session, issuer=hierarchy.tls, serial=SERIAL, created_at=NOW)
    cases = [
        ("certificate", make_leaf(hierarchy.tls_ca, SERIAL + 1)),  # wrong serial
        ("certificate", make_leaf(hierarchy.other_ca, SERIAL)),  # wrong issuer
        ("precertificate", make_leaf(hierarchy.tls_ca, SERIAL)),  # no poison
        ("certificate", make_leaf(hierarchy.tls_ca, SERIAL, precertificate=True)),  # poisoned
        ("certificate", b"\x30\x03\x02\x01\x01"),  # not a certificate
    ]
    for kind, der in cases:
        with pytest.raises(CandorError) as caught, db.session() as session:
            add_certificate(session, serial_record=record, kind=kind, der=der, created_at=NOW)
        assert caught.value.kind is ErrorKind.POLICY


def test_database_checks_and_foreign_keys(db: Database, hierarchy: Hierarchy) -> None:
    bad_rows = [
        {**_raw_serial_row(hierarchy.tls.id, "01"), "status": "lost"},  # CHECK on status
        _raw_serial_row(hierarchy.tls.id, "0A"),  # CHECK on the hex form
        _raw_serial_row(hierarchy.tls.id, "5"),
        _raw_serial_row(999_999, "01"),  # foreign key
        {**_raw_serial_row(hierarchy.tls.id, "02"), "status": "revoked"},  # revoked needs a time
    ]
    for row in bad_rows:
        with pytest.raises(IntegrityError), db.engine.begin() as connection:
            connection.execute(insert(SerialRecord), [row])


def test_keys_and_issuers(db: Database, hierarchy: Hierarchy) -> None:
    with db.session() as session:
        key = key_by_label(session, "tls-e1-key")
        assert key is not None
        assert key.purpose == "tls-ca"
        assert key.public_key_der == spki(hierarchy.tls_ca.key)
        assert key_by_label(session, "nope") is None
        issuer = issuer_by_name(session, "tls-e1")
        assert issuer is not None
        assert issuer.parent_id == hierarchy.root.id
        assert issuer.key.label == "tls-e1-key"
        assert issuer.not_before.tzinfo is UTC
        assert issuer.ski_hex
        assert len(issuer.fingerprint_sha256) == 64
        assert [i.name for i in list_issuers(session)] == ["root-x1", "tls-e1", "tls-e2"]
        assert [i.name for i in list_issuers(session, kind="root")] == ["root-x1"]
        assert issuer_by_name(session, "nope") is None


def test_duplicate_key_label_and_issuer_name_conflict(db: Database, hierarchy: Hierarchy) -> None:
    ca = make_ca("Another TLS", hierarchy.root_ca)
    with pytest.raises(CandorError) as caught, db.session() as session:
        register(session, "tls-e1", ca, kind="tls", parent=hierarchy.root)
    assert caught.value.kind is ErrorKind.CONFLICT
    assert "tls-e1-key" in str(caught.value)
    with pytest.raises(CandorError) as caught, db.session() as session:
        add_key(
            session,
            label="fresh-label",
            store="main",
            backend="file",
            algorithm="ecdsa-p256",
            handle="x.key",
            public_key_der=spki(hierarchy.tls_ca.key),
            purpose="tls-ca",
            created_at=NOW,
        )
    assert caught.value.kind is ErrorKind.CONFLICT


def test_issuer_validation(db: Database, hierarchy: Hierarchy) -> None:
    stranger = make_ca("Stranger")
    stranger_sub = make_ca("Stranger Sub", stranger)
    with pytest.raises(CandorError) as caught, db.session() as session:
        register(session, "bad-sub", stranger_sub, kind="tls", parent=hierarchy.root)  # not issued by the root
    assert caught.value.kind is ErrorKind.POLICY
    with pytest.raises(CandorError) as caught, db.session() as session:
        register(session, "Bad Name", stranger, kind="root")
    assert caught.value.kind is ErrorKind.POLICY


def test_naive_created_at_is_refused(db: Database, hierarchy: Hierarchy) -> None:
    naive = datetime(2026, 1, 1)  # naive on purpose
    with pytest.raises(CandorError) as caught, db.session() as session:
        reserve_serial(session, issuer=hierarchy.tls, serial=SERIAL, created_at=naive)
    assert "naive" in str(caught.value)


def test_every_key_algorithm_is_accepted_by_the_schema(db: Database) -> None:
    rows = [
        {
            "label": f"k-{algorithm.value}",
            "store": "main",
            "backend": "pkcs11",
            "algorithm": algorithm.value,
            "handle": "01",
            "public_key_der": b"\x30",
            "spki_sha256": f"{index:064x}",
            "purpose": "ct-log",
            "created_at": NOW,
        }
        for index, algorithm in enumerate(KeyAlgorithm)
    ]
    with db.engine.begin() as connection:
        connection.execute(insert(KeyRecord), rows)
