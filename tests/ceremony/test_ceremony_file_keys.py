"""The default ceremony with file keys: chains that openssl accepts, encrypted keys, every step audited."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from candor.audit import verify_chain
from candor.config import database_url, load_config
from candor.storage import Database, repositories
from candor.storage.models import AuditEvent
from support import openssl, run_cli

ISSUERS = ("root-x1", "tls-e1", "tls-r1", "tsa-ca1")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("home")
    result = run_cli("--data-dir", directory, "init", "--port", "18080")
    assert result.code == 0, result.err
    return directory


@pytest.fixture(scope="module")
def database(home: Path) -> Database:
    return Database(database_url(load_config(home).database, home))


def cert(home: Path, name: str) -> x509.Certificate:
    return x509.load_der_x509_certificate((home / "public" / "issuers" / f"{name}.der").read_bytes())


def test_init_publishes_every_ca_certificate_and_the_root_crl(home: Path) -> None:
    for name in ISSUERS:
        assert (home / "public" / "issuers" / f"{name}.der").is_file()
        assert (home / "public" / "issuers" / f"{name}.pem").is_file()
    crl = x509.load_der_x509_crl((home / "public" / "crl" / "root-x1.crl").read_bytes())
    assert crl.is_signature_valid(cert(home, "root-x1").public_key())  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["tls-e1", "tls-r1", "tsa-ca1"])
def test_openssl_x509_strict_accepts_each_subordinate(home: Path, name: str) -> None:
    issuers = home / "public" / "issuers"
    result = openssl("verify", "-x509_strict", "-CAfile", issuers / "root-x1.pem", issuers / f"{name}.pem")
    assert result.returncode == 0 and ": OK" in result.stdout, result.stdout + result.stderr


def test_openssl_x509_strict_accepts_the_root_and_rejects_a_foreign_chain(home: Path, tmp_path: Path) -> None:
    issuers = home / "public" / "issuers"
    ok = openssl("verify", "-x509_strict", "-CAfile", issuers / "root-x1.pem", issuers / "root-x1.pem")
    assert ok.returncode == 0, ok.stderr
    # The TLS CA is no trust anchor for the time-stamping CA: the check can fail.
    bad = openssl("verify", "-x509_strict", "-CAfile", issuers / "tls-e1.pem", issuers / "tsa-ca1.pem")
    assert bad.returncode != 0


def test_openssl_accepts_the_ocsp_responder_chains(home: Path, database: Database, tmp_path: Path) -> None:
    issuers = home / "public" / "issuers"
    with database.session() as session:
        for name in ("tls-e1", "tls-r1"):
            issuer = repositories.issuer_by_name(session, name)
            assert issuer is not None
            responders = repositories.ocsp_responders(session, issuer)
            assert len(responders) == 1
            leaf = x509.load_der_x509_certificate(responders[0].certificate.der)
            assert leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.OCSP_SIGNING]
            )
            assert leaf.extensions.get_extension_for_class(x509.OCSPNoCheck)
            pem = tmp_path / f"{name}-ocsp.pem"
            pem.write_bytes(leaf.public_bytes(Encoding.PEM))
            result = openssl(
                "verify", "-x509_strict", "-purpose", "ocsphelper", "-CAfile", issuers / "root-x1.pem",
                "-untrusted", issuers / f"{name}.pem", pem,
            )  # fmt: skip
            assert result.returncode == 0, result.stdout + result.stderr


def test_tls_subordinates_follow_br_7_1_2_6(home: Path) -> None:
    for name in ("tls-e1", "tls-r1"):
        certificate = cert(home, name)
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
        crldp = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        assert crldp[0].full_name == [x509.UniformResourceIdentifier("http://127.0.0.1:18080/crl/root-x1.crl")]
        aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        assert [d.access_location.value for d in aia] == ["http://127.0.0.1:18080/issuers/root-x1.der"]


def test_file_keys_are_encrypted_pkcs8_readable_only_by_owner(home: Path) -> None:
    passphrase = (home / "secrets" / "key-passphrase").read_text().splitlines()[0]
    key_files = sorted((home / "keys").glob("*.key"))
    assert len(key_files) == 9  # the ceremony's 8 and the first TSA unit's, which candor init certifies after it
    for path in key_files:
        assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        wrong = openssl("pkey", "-in", path, "-passin", "pass:not the passphrase", "-noout")
        assert wrong.returncode != 0
    right = openssl("pkey", "-in", key_files[0], "-passin", f"pass:{passphrase}", "-noout")
    assert right.returncode == 0, right.stderr


def test_every_ceremony_step_is_an_audit_event(database: Database) -> None:
    with database.session() as session:
        events = list(session.query(AuditEvent).order_by(AuditEvent.seq))
        assert verify_chain(session).ok
    everything = [e.action for e in events]
    # the clock watch's verdict comes first (the ceremony signs only on a confirmed clock), the first TSA unit after
    assert everything[0] == "clock.trusted" and everything[-1] == "tsa.unit.certify"
    first, last = everything.index("ceremony.start"), everything.index("ceremony.complete")
    actions = everything[first : last + 1]
    assert actions.count("key.generate") == 8
    assert actions.count("certificate.sign") == 6  # root, 2 TLS CAs, TSA CA, 2 OCSP responders
    assert actions.count("crl.sign") == 1
    assert actions.count("ct_log.key_created") == 2
    assert all(e.occurred_at.tzinfo is not None for e in events)
    signed = [e for e in events if e.action == "certificate.sign"]
    assert all('"der":' in e.details and '"tbs_sha256":' in e.details for e in signed)


def test_hierarchy_shows_tree_fingerprints_and_validity(home: Path) -> None:
    result = run_cli("--data-dir", home, "hierarchy")
    assert result.code == 0, result.err
    for name in ISSUERS:
        assert name in result.out
    root = cert(home, "root-x1")
    fingerprint = root.fingerprint(hashes.SHA256()).hex().upper()
    assert ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)) in result.out
    assert f"{root.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}" in result.out
    assert "├─ tls-e1" in result.out and "└─ tsa-ca1" in result.out
    assert "log ID" in result.out


def test_a_second_ceremony_never_replaces_the_hierarchy(home: Path) -> None:
    result = run_cli("--data-dir", home, "ceremony", "--config", home / "ceremony.toml")
    assert result.code != 0
    assert "already has root-x1" in result.err


def test_keys_verify_signs_with_every_recorded_key(home: Path) -> None:
    result = run_cli("--data-dir", home, "keys", "verify")
    assert result.code == 0, result.err
    assert "9 key(s) usable" in result.out  # the ceremony's 8 and the first TSA unit's
