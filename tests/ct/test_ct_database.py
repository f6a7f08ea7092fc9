"""``[ct] database``: the CT logs keep their tables in a database of their own, apart from the CA's, so that a log's
writes and the CA's never queue behind each other on one SQLite write lock. The key record comes from the CA's
database (the ceremony's registry); a log is never served from a database behind what it has published (that would
fork it); ``candor db upgrade`` migrates both databases."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from ct_pki import leaf_builder
from sqlalchemy import create_engine, text

from candor.cli import ct_edge
from candor.cli.context import Context, open_context
from candor.config import CandorConfig, load_config
from candor.defaults import CONFIG_TEMPLATE
from candor.errors import CandorError, ErrorKind
from candor.keys import KeyAlgorithm, KeyStores
from candor.storage import Database, add_key, issuer_by_name
from candor.storage.database import _alembic_config
from support import FILE_STORE, home_after_ceremony, run_cli

LOGS = """
[[ct.logs]]
name = "log-a"
operator = "Candor Local Log Operator A"
roots = ["public/issuers/root-x1.pem"]

[[ct.logs]]
name = "log-b"
operator = "Candor Local Log Operator B"
roots = ["public/issuers/root-x1.pem"]
"""


def _configure(home: Path, database: str | None) -> None:
    section = "" if database is None else f'\n[ct]\ndatabase = "{database}"\n'
    (home / "candor.toml").write_text(f'[database]\nurl = "sqlite:///candor.db"\n{FILE_STORE}{section}{LOGS}')


@pytest.fixture(scope="module")
def ceremony_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return home_after_ceremony(tmp_path_factory.mktemp("ct-db") / "home", stores=FILE_STORE + LOGS)


@pytest.fixture
def home(ceremony_home: Path, tmp_path: Path) -> Path:
    """A copy of the ceremony's data directory (its CA database, keys and public files), logs not yet started."""
    copy = tmp_path / "home"
    copy.mkdir()
    for path in ceremony_home.rglob("*"):
        target = copy / path.relative_to(ceremony_home)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        elif not path.name.startswith("candor.db-"):
            target.write_bytes(path.read_bytes())
    _configure(copy, "sqlite:///ct-logs.db")
    return copy


@contextmanager
def _served(home: Path) -> Iterator[tuple[Context, ct_edge.OwnLogs]]:
    with open_context(home, {}) as context:
        stores = KeyStores(context.config.keys.stores, base_dir=home, environ={})
        try:
            own = ct_edge.open_own_logs(context, stores)
            try:
                yield context, own
            finally:
                own.close()
        finally:
            stores.close()


def _precertificate(context: Context, serial: int) -> list[bytes]:
    stores = KeyStores(context.config.keys.stores, base_dir=context.data_dir, environ={})
    try:
        with context.db.session() as session:
            issuer = issuer_by_name(session, "tls-e1")
            assert issuer is not None
            issuer_der, handle, store = issuer.certificate_der, issuer.key.handle, issuer.key.store
        key = stores.get(store).load(handle, KeyAlgorithm.ECDSA_P256)
    finally:
        stores.close()
    precert = (
        leaf_builder(x509.load_der_x509_certificate(issuer_der).subject, serial)
        .add_extension(x509.PrecertPoison(), critical=True)
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
        .public_bytes(Encoding.DER)
    )
    return [precert, issuer_der]


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _log_some(home: Path, serials: range) -> int:
    """Log a precertificate per serial in every log, integrate, and return log-a's tree size."""
    with _served(home) as (context, own):
        for serial in serials:
            chain = _precertificate(context, serial)
            for _settings, ct_log in own.logs:
                ct_log.add_chain(chain, precertificate=True)
        return int(own.logs[0][1].integrate().tree_size)


def test_the_logs_keep_their_entries_and_tree_heads_in_their_own_database(home: Path) -> None:
    assert _log_some(home, range(7001, 7004)) == 3
    logs_db, ca_db = home / "ct-logs.db", home / "candor.db"
    assert (_count(logs_db, "ct_logs"), _count(logs_db, "ct_entries")) == (2, 6)
    assert _count(logs_db, "ct_tree_heads") >= 2
    for table in ("ct_logs", "ct_entries", "ct_tree_heads", "ct_issuers", "ct_tiles"):
        assert _count(ca_db, table) == 0, table
    # the log's key record is the ceremony's, copied: same label, public key and handle; no private material
    query = "SELECT label, public_key_der, handle, purpose FROM keys WHERE purpose = 'ct-log' ORDER BY label"
    with sqlite3.connect(logs_db) as logs, sqlite3.connect(ca_db) as ca:
        assert logs.execute(query).fetchall() == ca.execute(query).fetchall()
        assert len(logs.execute(query).fetchall()) == 2
        assert logs.execute("SELECT count(*) FROM keys").fetchone()[0] == 2  # only the logs' keys
    # started again, each log goes on from its stored tree
    assert _log_some(home, range(7004, 7005)) == 4


@pytest.mark.postgres
def test_the_logs_database_may_be_postgresql(home: Path, postgres_schema_url: str) -> None:
    """The CA on SQLite, its logs on PostgreSQL: entries, tree heads and the copied key records land there; started
    again, each log goes on from its stored tree; moved back to an empty database, it is refused."""
    _configure(home, postgres_schema_url)
    assert _log_some(home, range(7501, 7503)) == 2
    logs = create_engine(postgres_schema_url)
    try:
        with logs.connect() as connection:
            count = {
                t: connection.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("ct_logs", "ct_entries", "keys")
            }
        assert count == {"ct_logs": 2, "ct_entries": 4, "keys": 2}
    finally:
        logs.dispose()
    assert _count(home / "candor.db", "ct_entries") == 0
    assert _log_some(home, range(7503, 7504)) == 3
    _configure(home, "sqlite:///ct-logs.db")  # never served from: empty, behind the published checkpoint
    with pytest.raises(CandorError, match="would fork the log"):
        _log_some(home, range(7504, 7505))


@pytest.mark.parametrize("moved_to", ["sqlite:///elsewhere.db", None])
def test_a_log_moved_to_a_database_behind_its_published_checkpoint_is_refused(home: Path, moved_to: str | None) -> None:
    """Served from ct-logs.db, then [ct] database pointed at an empty file, or removed (back to the CA's
    database, which holds no log): either would sign a second tree of sizes already published."""
    assert _log_some(home, range(7101, 7103)) == 2
    _configure(home, moved_to)
    with pytest.raises(CandorError, match="would fork the log") as refused:
        _log_some(home, range(7103, 7104))
    assert refused.value.kind is ErrorKind.CONFIG
    assert "ct.logs 'log-a': its database holds a tree of 0 entries, but it has published a checkpoint of 2" in (
        refused.value.message
    )
    # refused before anything of the log was written where it would have forked: no row, no key record
    target = home / ("elsewhere.db" if moved_to else "candor.db")
    assert _count(target, "ct_logs") == 0
    if moved_to:
        assert _count(target, "keys") == 0  # (the CA's database keeps the ceremony's records, as it always has)
    _configure(home, "sqlite:///ct-logs.db")  # the database it was served from: served again
    assert _log_some(home, range(7103, 7104)) == 3


def test_a_log_database_with_another_key_under_the_log_label_is_refused(home: Path) -> None:
    logs = Database(f"sqlite:///{home / 'ct-logs.db'}")
    try:
        logs.upgrade()
        other = ec.generate_private_key(ec.SECP256R1()).public_key()
        with logs.session() as session:
            add_key(
                session, label="log-a", store="file", backend="file", algorithm=KeyAlgorithm.ECDSA_P256.value,
                handle="someone-else", purpose="ct-log", created_at=datetime.now(UTC),
                public_key_der=other.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
            )  # fmt: skip
    finally:
        logs.dispose()
    with pytest.raises(CandorError, match="another key labelled 'log-a'"):
        _log_some(home, range(7201, 7202))


def test_an_old_logs_database_waits_for_db_upgrade(home: Path) -> None:
    script = ScriptDirectory.from_config(_alembic_config())
    head = script.get_current_head()
    assert head is not None
    previous = script.get_revision(head).down_revision
    assert isinstance(previous, str)
    logs = Database(f"sqlite:///{home / 'ct-logs.db'}")
    try:
        logs.upgrade(previous)
    finally:
        logs.dispose()
    with pytest.raises(CandorError, match="CT logs' database schema is not current; run 'candor db upgrade'"):
        _log_some(home, range(7301, 7302))
    result = run_cli("--data-dir", home, "db", "upgrade")
    assert result.code == 0, result.err
    assert f"CT logs' database at revision {head}" in result.out
    assert _log_some(home, range(7301, 7302)) == 1


def test_without_ct_database_or_naming_the_cas_the_logs_share_the_cas_database(home: Path) -> None:
    for database in (None, "sqlite:///candor.db", f"sqlite:///{home / 'candor.db'}"):
        _configure(home, database)
        with open_context(home, {}) as context:
            assert ct_edge.logs_database(context) is None
    assert _log_some(home, range(7401, 7402)) == 1
    assert _count(home / "candor.db", "ct_entries") == 2
    assert not (home / "ct-logs.db").exists()


def test_the_ct_database_url_is_checked_and_the_template_sets_one(tmp_path: Path) -> None:
    keys = {"stores": {"f": {"backend": "file", "passphrase": {"env": "X"}}}}
    with pytest.raises(ValueError, match=r"sqlite:///PATH or postgresql\+psycopg"):
        CandorConfig.model_validate({"keys": keys, "ct": {"database": "mysql://ct"}})
    with pytest.raises(ValueError, match="psycopg 3"):
        CandorConfig.model_validate({"keys": keys, "ct": {"database": "postgresql://ct@db/ct"}})
    assert CandorConfig.model_validate({"keys": keys}).ct.database is None
    (tmp_path / "candor.toml").write_text(CONFIG_TEMPLATE.format(port=1, base_url="http://a", acme_port=2))
    assert load_config(tmp_path).ct.database == "sqlite:///ct-logs.db"
    _configure(tmp_path, "mysql://ct")
    with pytest.raises(CandorError, match=r"candor.toml: ct.database: must be a sqlite:///PATH"):
        load_config(tmp_path)
