"""The clock watch in the CLI: what `candor init` writes, `candor clock status`, and `candor issue` refusing on
a clock its source does not confirm (WS-08e), with the events in the audit log."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from issuing import build_home, csr_for
from ntp_server import NtpServer
from sqlalchemy import select

from candor.cli.clock_edge import initial_clock
from candor.config import database_url, load_config
from candor.defaults import CLOCK_CHRONY, CLOCK_SYSTEM, CONFIG_TEMPLATE
from candor.storage import Database
from candor.storage.models import AuditEvent
from candor.timekeeping import SUSPENDED
from support import assert_one_line_error, run_cli

SAMPLES = Path(__file__).parent / "data" / "chronyc-tracking"
EXIT_UNAVAILABLE, EXIT_CONFIG = 9, 2


def use_ntp(home: Path, server: NtpServer, **extra: object) -> None:
    lines = ['sources = ["ntp"]', f'ntp_servers = ["{server.address}"]', "ntp_timeout_seconds = 1"]
    lines += [f"{name} = {value}" for name, value in extra.items()]
    with (home / "candor.toml").open("a") as config:
        config.write("\n[clock]\n" + "\n".join(lines) + "\n")


def clock_events(home: Path) -> list[tuple[str, str, str]]:
    db = Database(database_url(load_config(home).database, home))
    try:
        with db.session() as session:
            rows = session.scalars(select(AuditEvent).where(AuditEvent.action.like("clock.%")).order_by(AuditEvent.seq))
            return [(row.action, row.outcome, row.actor) for row in rows]
    finally:
        db.dispose()


@pytest.fixture
def ntp() -> Iterator[NtpServer]:
    with NtpServer() as server:
        yield server


@pytest.fixture(scope="module")
def private_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_home(tmp_path_factory.mktemp("clock-cli"))


def fake_chronyc(directory: Path, output: str) -> Path:
    directory.mkdir(exist_ok=True)
    script = directory / "chronyc"
    script.write_text(f"#!{sys.executable}\nprint({output!r})\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return directory


def test_init_names_chrony_only_when_chronyd_answers_synchronised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = CONFIG_TEMPLATE.format(port=8080, base_url="http://127.0.0.1:8080", acme_port=8443)
    assert template.count(CLOCK_SYSTEM) == 1
    synced = fake_chronyc(tmp_path / "synced", (SAMPLES / "synchronised.csv").read_text().strip())
    monkeypatch.setenv("PATH", f"{synced}{os.pathsep}{os.environ['PATH']}")
    text, note = initial_clock(template)
    assert CLOCK_CHRONY in text and CLOCK_SYSTEM not in text
    assert note == "clock: chronyd is synchronised here; [clock] follows it"

    unsynced = fake_chronyc(tmp_path / "unsynced", (SAMPLES / "not-synchronised.csv").read_text().strip())
    monkeypatch.setenv("PATH", f"{unsynced}{os.pathsep}{os.environ['PATH']}")
    text, note = initial_clock(template)
    assert text == template
    assert note == "clock: chronyd is not synchronised; [clock] trusts this host's clock as it is (a local PKI only)"

    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    assert initial_clock(template)[1].startswith("clock: chronyc is not installed;")


def test_clock_status_shows_the_sources_and_fails_when_the_clock_is_off(private_home: Path, ntp: NtpServer) -> None:
    home = private_home
    config = (home / "candor.toml").read_text()
    before = clock_events(home)
    try:
        use_ntp(home, ntp)
        result = run_cli("--data-dir", home, "clock", "status")
        assert result.code == 0, result.err
        lines = result.out.splitlines()
        assert lines[0].startswith(f"source ntp {ntp.address}: synchronised, offset ")
        assert lines[1].startswith("verdict: trustworthy, offset ") and lines[1].endswith("(bound 1 s)")

        ntp.behaviour.offset = 5.0
        result = run_cli("--data-dir", home, "clock", "status")
        assert result.code == EXIT_UNAVAILABLE
        assert_one_line_error(result, "the clock is not trustworthy: the clock is -", "s off its time sources")
        offset = float(result.err.split("the clock is ")[2].split(" s off")[0])
        assert offset == pytest.approx(-5.0, abs=0.1)
        assert clock_events(home) == before  # looking is not an event
    finally:
        (home / "candor.toml").write_text(config)


def test_candor_issue_signs_nothing_while_the_clock_is_off(private_home: Path, ntp: NtpServer, tmp_path: Path) -> None:
    home = private_home
    config = (home / "candor.toml").read_text()
    csr = tmp_path / "req.der"
    csr.write_bytes(csr_for(["clock-off.example.com"]))
    try:
        use_ntp(home, ntp)
        ntp.behaviour.offset = -3.0  # the system clock is 3 s ahead
        result = run_cli("--data-dir", home, "issue", "--csr", csr, "--issuer", "tls-e1", "--out", tmp_path / "c.pem")
        assert result.code == EXIT_UNAVAILABLE
        assert result.err.strip().splitlines()[-1] == f"candor: error: {SUSPENDED}"
        assert not (tmp_path / "c.pem").exists()
        assert clock_events(home)[-1] == ("clock.untrusted", "failure", "clock-watch")

        ntp.behaviour.offset = 0.0
        result = run_cli("--data-dir", home, "issue", "--csr", csr, "--issuer", "tls-e1", "--out", tmp_path / "c.pem")
        assert result.code == 0, result.err
        assert (tmp_path / "c.pem").exists()
        assert clock_events(home)[-1] == ("clock.trusted", "success", "clock-watch")
    finally:
        (home / "candor.toml").write_text(config)


def test_a_public_hierarchy_must_name_a_utc_source(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    public = build_home(tmp_path_factory.mktemp("clock-public"), private=False)
    csr = tmp_path / "req.der"
    csr.write_bytes(csr_for(["www.example.com"]))
    for clock in ("", '\n[clock]\nsources = ["system"]\n'):
        with (public / "candor.toml").open("a") as config:
            config.write(clock)
        for command in (("issue", "--csr", csr, "--issuer", "tls-e1"), ("clock", "status")):
            result = run_cli("--data-dir", public, *command)
            assert result.code == EXIT_CONFIG
            assert_one_line_error(result, "clock.sources: publicly-trusted issuers (", "need chrony or NTP servers")


def test_the_key_ceremony_signs_nothing_while_the_clock_is_off(private_home: Path, ntp: NtpServer) -> None:
    """WS-08e for the one-shot signers: the ceremony's certificates are dated by this clock too."""
    home = private_home
    config = (home / "candor.toml").read_text()
    try:
        use_ntp(home, ntp)
        ntp.behaviour.offset = 4.0  # the system clock is 4 s behind
        keys_before = sorted(p.name for p in (home / "keys").iterdir())
        result = run_cli("--data-dir", home, "ceremony", "--config", home / "c.toml")
        assert result.code == EXIT_UNAVAILABLE
        assert result.err.strip().splitlines()[-1] == f"candor: error: {SUSPENDED}"
        assert sorted(p.name for p in (home / "keys").iterdir()) == keys_before  # no key generated, nothing signed
        assert clock_events(home)[-1] == ("clock.untrusted", "failure", "clock-watch")
    finally:
        (home / "candor.toml").write_text(config)


def test_candor_crl_generate_signs_nothing_while_the_clock_is_off(private_home: Path, ntp: NtpServer) -> None:
    home = private_home
    config = (home / "candor.toml").read_text()
    try:
        use_ntp(home, ntp)
        ntp.behaviour.offset = 4.0
        for flags in ((), ("--all",), ("--issuer", "tls-e1")):
            result = run_cli("--data-dir", home, "crl", "generate", *flags)
            assert result.code == EXIT_UNAVAILABLE, (flags, result.err)  # not 4, the exit code of a lint refusal
            assert result.err.strip().splitlines()[-1] == f"candor: error: {SUSPENDED}"
    finally:
        (home / "candor.toml").write_text(config)
