"""`candor acme eab create|list|revoke`: the operator's side of external account binding (RFC 8555 7.3.4)."""

from __future__ import annotations

from pathlib import Path

from candor.acme import eab
from support import make_home, run_cli

SECRET = "an EAB secret of forty characters or so!"


def _home(tmp_path: Path) -> Path:
    home = make_home(tmp_path / "home")
    (home / "secrets" / "eab").write_text(SECRET + "\n")
    with (home / "candor.toml").open("a") as config:
        config.write('\n[acme]\neab_secret = { file = "secrets/eab" }\nexternal_account_required = true\n')
    assert run_cli("--data-dir", home, "db", "upgrade").code == 0
    return home


def test_create_prints_a_kid_and_the_mac_key_derived_from_the_secret(tmp_path: Path) -> None:
    home = _home(tmp_path)
    created = run_cli("--data-dir", home, "acme", "eab", "create", "--label", "customer 42")
    assert created.code == 0, created.err
    lines = dict(line.split(": ", 1) for line in created.out.splitlines() if ": " in line)
    kid = lines["kid"]
    assert lines["hmac key"] == eab.encode_mac_key(eab.mac_key(SECRET, kid))
    assert SECRET not in created.out + created.err
    assert SECRET.encode() not in (home / "candor.db").read_bytes()

    listed = run_cli("--data-dir", home, "acme", "eab", "list")
    assert kid in listed.out and "active" in listed.out and "customer 42" in listed.out
    assert run_cli("--data-dir", home, "acme", "eab", "revoke", kid).code == 0
    assert "revoked" in run_cli("--data-dir", home, "acme", "eab", "list").out
    assert run_cli("--data-dir", home, "audit", "verify").code == 0


def test_unknown_kid_and_missing_secret_are_clear_errors(tmp_path: Path) -> None:
    home = _home(tmp_path)
    missing = run_cli("--data-dir", home, "acme", "eab", "revoke", "kid-nope")
    assert missing.code != 0 and "kid-nope" in missing.err and "Traceback" not in missing.err
    (home / "secrets" / "eab").unlink()
    unreadable = run_cli("--data-dir", home, "acme", "eab", "create", "--label", "x")
    assert unreadable.code != 0 and "secrets/eab" in unreadable.err


def test_required_binding_without_a_secret_is_a_config_error(tmp_path: Path) -> None:
    home = make_home(tmp_path / "bare")
    with (home / "candor.toml").open("a") as config:
        config.write("\n[acme]\nexternal_account_required = true\n")
    result = run_cli("--data-dir", home, "db", "upgrade")
    assert result.code != 0 and "eab_secret" in result.err
