"""A ceremony on SoftHSM2: root on one token, issuing CAs on another; keys never leave the tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import select

from candor.config import database_url, load_config
from candor.keys import KeyStores
from candor.storage import Database
from candor.storage.models import KeyRecord
from softhsm import SoftHsm
from support import ceremony_file, make_home, openssl, pkcs11_store, run_cli

pytestmark = pytest.mark.softhsm


def _extension_shape(certificate: x509.Certificate) -> list[tuple[str, bool]]:
    return [(e.oid.dotted_string, e.critical) for e in certificate.extensions]


@pytest.fixture(scope="module")
def hsm_home(tmp_path_factory: pytest.TempPathFactory, softhsm: SoftHsm) -> tuple[Path, dict[str, str]]:
    root_token, issuing_token = softhsm.make_token(), softhsm.make_token()
    stores = pkcs11_store("hsm-root", softhsm.module, root_token.label, "CANDOR_TEST_ROOT_PIN") + pkcs11_store(
        "hsm-issuing", softhsm.module, issuing_token.label, "CANDOR_TEST_ISSUING_PIN"
    )
    home = make_home(tmp_path_factory.mktemp("hsm"), stores=stores)
    pins = {"CANDOR_TEST_ROOT_PIN": root_token.pin, "CANDOR_TEST_ISSUING_PIN": issuing_token.pin}
    spec = ceremony_file(
        home / "ceremony.toml",
        replace={
            'name = "root-x1"\nkey = { store = "file"': 'name = "root-x1"\nkey = { store = "hsm-root"',
            'store = "file"': 'store = "hsm-issuing"',
        },
    )
    result = run_cli("--data-dir", home, "ceremony", "--config", spec, environ=pins)
    assert result.code == 0, result.err
    return home, pins


def test_root_and_issuing_keys_live_on_different_tokens(hsm_home: tuple[Path, dict[str, str]]) -> None:
    home, _ = hsm_home
    db = Database(database_url(load_config(home).database, home))
    with db.session() as session:
        stores = {k.label: k.store for k in session.scalars(select(KeyRecord))}
    db.dispose()
    assert stores["root-x1"] == "hsm-root"
    assert {stores[label] for label in stores if label != "root-x1"} == {"hsm-issuing"}
    assert not list((home / "keys").glob("*.key")) if (home / "keys").exists() else True


def test_private_keys_are_sensitive_and_never_extractable(hsm_home: tuple[Path, dict[str, str]]) -> None:
    home, pins = hsm_home
    config = load_config(home)
    stores = KeyStores(config.keys.stores, base_dir=home, environ=pins)
    db = Database(database_url(config.database, home))
    try:
        with db.session() as session:
            records = list(session.scalars(select(KeyRecord)))
        assert len(records) == 8
        for record in records:
            protection = stores.get(record.store).protection(record.handle)
            assert protection.sensitive and not protection.extractable, record.label
    finally:
        stores.close()
        db.dispose()


def test_pkcs11_tool_reports_the_keys_never_extractable(
    hsm_home: tuple[Path, dict[str, str]], softhsm: SoftHsm
) -> None:
    """An independent PKCS#11 client (OpenSC) reads the attributes off the token."""
    home, pins = hsm_home
    config = load_config(home)
    store = config.keys.stores["hsm-root"]
    label = store.token_label
    token = type("Token", (), {"label": label, "pin": pins["CANDOR_TEST_ROOT_PIN"]})()
    listing = softhsm.pkcs11_tool(token, "--list-objects", "--type", "privkey")  # type: ignore[arg-type]
    assert "label:      root-x1" in listing
    assert "never extractable" in listing and "sensitive" in listing


def test_hsm_hierarchy_verifies_with_openssl(hsm_home: tuple[Path, dict[str, str]]) -> None:
    home, _ = hsm_home
    issuers = home / "public" / "issuers"
    for name in ("tls-e1", "tls-r1", "tsa-ca1"):
        result = openssl("verify", "-x509_strict", "-CAfile", issuers / "root-x1.pem", issuers / f"{name}.pem")
        assert result.returncode == 0, result.stdout + result.stderr


def test_signing_goes_through_the_token(hsm_home: tuple[Path, dict[str, str]]) -> None:
    home, pins = hsm_home
    result = run_cli("--data-dir", home, "keys", "verify", environ=pins)
    assert result.code == 0, result.err
    assert "8 key(s) usable" in result.out


def test_file_backend_produces_the_same_hierarchy(hsm_home: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    home, _ = hsm_home
    file_home = make_home(tmp_path / "file")
    result = run_cli("--data-dir", file_home, "ceremony", "--config", ceremony_file(file_home / "c.toml"))
    assert result.code == 0, result.err
    for name in ("root-x1", "tls-e1", "tls-r1", "tsa-ca1"):
        hsm = x509.load_der_x509_certificate((home / "public" / "issuers" / f"{name}.der").read_bytes())
        file = x509.load_der_x509_certificate((file_home / "public" / "issuers" / f"{name}.der").read_bytes())
        assert hsm.subject == file.subject and hsm.issuer == file.issuer
        assert _extension_shape(hsm) == _extension_shape(file)
        assert hsm.signature_algorithm_oid == file.signature_algorithm_oid
        assert type(hsm.public_key()) is type(file.public_key())
