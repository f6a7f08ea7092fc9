"""What ``candor serve`` will use: the [[ct.logs]] settings, the log key from the ceremony through the key
stores, a precertificate from Candor's own issuing CA logged end to end, and the import boundaries."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, load_der_public_key
from ct_pki import leaf_builder

from candor.clock import SystemClock
from candor.config import CandorConfig, load_config
from candor.ct.log.keys import log_signer, open_log
from candor.ct.log.service import LogParameters
from candor.ct.log.settings import CtLogSettings
from candor.errors import CandorError
from candor.keys import KeyAlgorithm, KeyStores
from candor.storage import Database, issuer_by_name, key_by_label
from support import home_after_ceremony

FILE_STORE = """
[keys.stores.file]
backend = "file"
directory = "keys"
passphrase = { file = "secrets/key-passphrase" }
"""
CT_SECTION = """
[[ct.logs]]
name = "log-a"
operator = "Candor Local Log Operator A"
roots = ["public/issuers/root-x1.pem"]
mmd_seconds = 60

[[ct.logs]]
name = "log-b"
operator = "Candor Local Log Operator B"
roots = ["public/issuers/root-x1.pem"]
url_prefix = "/logs/b"
origin = "ct.example.com/b"
static_dir = "/srv/ct/b"
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return home_after_ceremony(tmp_path_factory.mktemp("ct-home") / "home", stores=FILE_STORE + CT_SECTION)


def test_config_reads_the_ct_logs_section(home: Path) -> None:
    config = load_config(home)
    first, second = config.ct.logs
    a = LogParameters.from_settings(first, data_dir=home, public_base_url="http://pki.example.com:8080")
    assert (a.key_label, a.origin, a.static_dir, a.mmd) == (
        "log-a", "pki.example.com:8080/ct/log-a", home / "public/ct/log-a", timedelta(seconds=60)
    )  # fmt: skip
    assert first.root_paths(home) == [home / "public/issuers/root-x1.pem"]
    b = LogParameters.from_settings(second, data_dir=home, public_base_url="http://ignored")
    assert (second.prefix, b.origin, b.static_dir) == ("/logs/b", "ct.example.com/b", Path("/srv/ct/b"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "Log A"}, "a-z"),
        ({"integrate_interval_ms": 60_000, "mmd_seconds": 60}, "shorter than the maximum merge delay"),
        ({"roots": []}, "at least 1"),
        ({"origin": "https://ct.example.com/a"}, "without scheme"),
        ({"url_prefix": "ct/a/"}, "start with '/'"),
        ({"mmd_seconds": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_log_settings_are_refused(changes: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"name": "log-a", "operator": "A", "roots": ["r.pem"], **changes}
    with pytest.raises(ValueError, match=message):
        CtLogSettings.model_validate(values)


def test_two_logs_cannot_share_a_name() -> None:
    log = {"name": "log-a", "operator": "A", "roots": ["r.pem"]}
    with pytest.raises(ValueError, match="own name"):
        CandorConfig.model_validate(
            {"keys": {"stores": {"f": {"backend": "file", "passphrase": {"env": "X"}}}}, "ct": {"logs": [log, log]}}
        )


def test_the_log_key_signs_through_the_key_store(home: Path) -> None:
    config = load_config(home)
    db = Database(f"sqlite:///{home / 'candor.db'}")
    stores = KeyStores(config.keys.stores, base_dir=home, environ={})
    try:
        signer = log_signer(stores, db, "log-a")
        with db.session() as session:
            record = key_by_label(session, "log-a")
            assert record is not None and record.purpose == "ct-log"
            assert signer.public_key_der == record.public_key_der
        key = load_der_public_key(signer.public_key_der)
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(signer.sign(b"probe"), b"probe", ec.ECDSA(hashes.SHA256()))
        with pytest.raises(CandorError, match="not a CT log P-256 key"):
            log_signer(stores, db, "root-x1")
        with pytest.raises(CandorError, match="no key labelled"):
            log_signer(stores, db, "log-z")
    finally:
        stores.close()
        db.dispose()


def test_a_precertificate_of_candors_issuer_is_logged(home: Path, tmp_path: Path) -> None:
    config = load_config(home)
    db = Database(f"sqlite:///{home / 'candor.db'}")
    stores = KeyStores(config.keys.stores, base_dir=home, environ={})
    settings = config.ct.logs[0].model_copy(update={"static_dir": tmp_path / "static"})
    ct_log = open_log(settings, db=db, clock=SystemClock(), stores=stores, data_dir=home, public_base_url="http://x")
    try:
        ct_log.start(background=False)
        with db.session() as session:
            issuer = issuer_by_name(session, "tls-e1")
            assert issuer is not None
            issuer_der, key_record = issuer.certificate_der, issuer.key
            handle, store = key_record.handle, key_record.store
        issuing_key = stores.get(store).load(handle, KeyAlgorithm.ECDSA_P256)
        precert = (
            leaf_builder(x509.load_der_x509_certificate(issuer_der).subject, 4242)
            .add_extension(x509.PrecertPoison(), critical=True)
            .sign(issuing_key, hashes.SHA256())  # type: ignore[arg-type]
            .public_bytes(Encoding.DER)
        )
        sct = ct_log.add_chain([precert, issuer_der], precertificate=True)
        assert sct.log_id == hashlib.sha256(signer_spki(db)).digest()
        assert ct_log.integrate().tree_size == 1
    finally:
        ct_log.close()
        stores.close()
        db.dispose()


def signer_spki(db: Database) -> bytes:
    with db.session() as session:
        record = key_by_label(session, "log-a")
        assert record is not None
        return record.public_key_der


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("candor.ct.log.app", ("candor.keys", "candor.cli", "candor.issuance", "candor.signing")),
        ("candor.ct.log.settings", ("candor.keys", "candor.storage", "candor.cli")),
        ("candor.ct.log", ("candor.keys", "candor.storage")),
    ],
)
def test_the_log_front_end_does_not_load_the_keys(module: str, forbidden: tuple[str, ...]) -> None:
    code = f"import sys, {module}; print('\\n'.join(m for m in sys.modules if m.startswith('candor')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert [m for m in loaded if m.startswith(forbidden)] == []
