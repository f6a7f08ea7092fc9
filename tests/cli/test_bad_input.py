"""Bad input gets one clear line and a non-zero exit, never a traceback (acceptance 6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from softhsm import SoftHsm
from support import FILE_STORE, assert_one_line_error, ceremony_file, make_home, pkcs11_store, run_cli


@pytest.mark.parametrize(
    ("config", "fragments"),
    [
        ("[database\nurl = 1", ("not valid TOML",)),
        ('[server]\nport = "eighty"\n' + FILE_STORE, ("server.port", "integer")),
        ("[server]\nport = 70000\n" + FILE_STORE, ("server.port", "65535")),
        ('[database]\nurl = "mysql://db"\n' + FILE_STORE, ("database.url", "sqlite")),
        ('[server]\npublic_base_url = "https://ca.example"\n' + FILE_STORE, ("public_base_url", "http://")),
        ('[server]\nlisten = "0.0.0.0"\n' + FILE_STORE, ("server.listen", "Extra inputs")),
        ('[keys.stores.x]\nbackend = "vault"\n', ("keys.stores.x", "'file', 'pkcs11'")),
        ('[keys.stores.x]\nbackend = "file"\npassphrase = { file = "a", env = "B" }\n', ("passphrase", "exactly one")),
        ("[logging]\nlevel = 'LOUD'\n" + FILE_STORE, ("logging.level", "DEBUG")),
        ("", ("keys", "Field required")),
    ],
    ids=[
        "not-toml", "port-type", "port-range", "db-scheme", "https-base", "unknown-key",
        "unknown-backend", "two-secret-sources", "log-level", "no-keys",
    ],
)  # fmt: skip
def test_malformed_config_is_one_line_naming_the_field(tmp_path: Path, config: str, fragments: tuple[str, ...]) -> None:
    (tmp_path / "candor.toml").write_text(config)
    result = run_cli("--data-dir", tmp_path, "hierarchy")
    assert_one_line_error(result, "candor.toml", *fragments)
    assert result.code == 2


def test_missing_data_directory(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("--data-dir", tmp_path / "nowhere", "hierarchy"), "does not exist")


def test_no_data_directory_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CANDOR_HOME", raising=False)
    assert_one_line_error(run_cli("hierarchy"), "CANDOR_HOME")


@pytest.mark.parametrize(
    ("algorithm", "shown"),
    [("rsa-1024", "rsa-1024"), ("secp256k1", "secp256k1"), ("ed25519", "ed25519"), ("sm2", "sm2"), ("dsa-2048", "dsa")],
)
def test_ceremony_refuses_a_forbidden_algorithm_before_any_key_exists(
    tmp_path: Path, algorithm: str, shown: str
) -> None:
    home = make_home(tmp_path)
    spec = ceremony_file(
        home / "ceremony.toml",
        replace={'store = "file", algorithm = "rsa-3072"': f'store = "file", algorithm = "{algorithm}"'},
    )
    result = run_cli("--data-dir", home, "ceremony", "--config", spec)
    assert_one_line_error(result, "tls_issuers.1.key.algorithm", shown, "ecdsa-p384")
    assert result.code == 2
    assert not (home / "keys").exists() or not list((home / "keys").iterdir())


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("validity_days = 9125", "validity_days = 10000", "root.validity_days"),
        ('policy = "dv"', 'policy = "anypolicy"', "tls_issuers.0.policy"),
        ('base_url = "http://127.0.0.1:8080"', 'base_url = "https://127.0.0.1"', "ceremony.base_url"),
        ('country = "XX", organization = "Candor Local PKI", common_name = "Candor Local Root X1"',
         'country = "USA", organization = "Candor Local PKI", common_name = "Candor Local Root X1"',
         "root.subject.country"),
        ('name = "log-b"\noperator = "Candor Local Log Operator B"\nkey = { store = "file", algorithm = "ecdsa-p256" }',
         'name = "log-b"\noperator = "Candor Local Log Operator B"\nkey = { store = "file", algorithm = "ecdsa-p384" }',
         "ct_logs.1.key"),
        ('name = "tsa-ca1"\nkey = { store = "file", algorithm = "ecdsa-p384" }',
         'name = "tsa-ca1"\nkey = { store = "file", algorithm = "rsa-2048" }', "timestamping.key"),
    ],
    ids=["root-validity", "policy", "https-url", "country", "ct-log-curve", "tsa-rsa-2048"],
)  # fmt: skip
def test_ceremony_refuses_values_outside_the_rules(tmp_path: Path, old: str, new: str, fragment: str) -> None:
    home = make_home(tmp_path)
    result = run_cli("--data-dir", home, "ceremony", "--config", ceremony_file(home / "c.toml", replace={old: new}))
    assert_one_line_error(result, fragment)


def test_ceremony_with_an_unconfigured_store(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    spec = ceremony_file(
        home / "c.toml",
        replace={'name = "root-x1"\nkey = { store = "file"': 'name = "root-x1"\nkey = { store = "vault"'},
    )
    assert_one_line_error(run_cli("--data-dir", home, "ceremony", "--config", spec), "vault", "not configured")


def test_missing_ceremony_file(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    assert_one_line_error(run_cli("--data-dir", home, "ceremony", "--config", tmp_path / "absent.toml"), "no such file")


@pytest.mark.softhsm
def test_wrong_hsm_pin_is_one_line_and_creates_nothing(tmp_path: Path, softhsm: SoftHsm) -> None:
    token = softhsm.make_token()
    home = make_home(tmp_path, stores=FILE_STORE + pkcs11_store("hsm", softhsm.module, token.label, "CANDOR_TEST_PIN"))
    spec = ceremony_file(
        home / "c.toml", replace={'name = "root-x1"\nkey = { store = "file"': 'name = "root-x1"\nkey = { store = "hsm"'}
    )
    result = run_cli("--data-dir", home, "ceremony", "--config", spec, environ={"CANDOR_TEST_PIN": "000000"})
    assert_one_line_error(result, "PIN")
    assert result.code == 3
    assert "000000" not in result.err
    assert not (home / "keys").exists() or not list((home / "keys").iterdir())


@pytest.mark.softhsm
def test_missing_pin_variable(tmp_path: Path, softhsm: SoftHsm) -> None:
    token = softhsm.make_token()
    home = make_home(
        tmp_path, stores=FILE_STORE + pkcs11_store("hsm", softhsm.module, token.label, "CANDOR_TEST_NO_PIN")
    )
    spec = ceremony_file(
        home / "c.toml", replace={'name = "root-x1"\nkey = { store = "file"': 'name = "root-x1"\nkey = { store = "hsm"'}
    )
    assert_one_line_error(run_cli("--data-dir", home, "ceremony", "--config", spec), "CANDOR_TEST_NO_PIN")


def test_wrong_key_passphrase_is_one_line(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    assert run_cli("--data-dir", home, "ceremony", "--config", ceremony_file(home / "c.toml")).code == 0
    (home / "secrets" / "key-passphrase").write_text("a different passphrase entirely\n")
    result = run_cli("--data-dir", home, "keys", "verify")
    assert_one_line_error(result, "wrong passphrase")
    assert result.code == 3


def test_a_new_ceremony_with_the_wrong_passphrase_stops_before_generating(tmp_path: Path) -> None:
    """A store that already holds keys is checked first, so no key is ever encrypted under a second passphrase."""
    home = make_home(tmp_path)
    assert run_cli("--data-dir", home, "ceremony", "--config", ceremony_file(home / "c.toml")).code == 0
    before = sorted(p.name for p in (home / "keys").iterdir())
    (home / "secrets" / "key-passphrase").write_text("a different passphrase entirely\n")
    renamed = {f'name = "{n}"': f'name = "{n}-2"' for n in ("root-x1", "tls-e1", "tls-r1", "tsa-ca1", "log-a", "log-b")}
    result = run_cli("--data-dir", home, "ceremony", "--config", ceremony_file(home / "d.toml", replace=renamed))
    assert_one_line_error(result, "wrong passphrase")
    assert sorted(p.name for p in (home / "keys").iterdir()) == before


def test_short_passphrase_is_refused(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    (home / "secrets" / "key-passphrase").write_text("short\n")
    result = run_cli("--data-dir", home, "ceremony", "--config", ceremony_file(home / "c.toml"))
    assert_one_line_error(result, "at least 12 characters")


def test_init_twice_is_refused(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    assert_one_line_error(run_cli("--data-dir", home, "init"), "already initialised")
