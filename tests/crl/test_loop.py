"""The schedule: a revoked serial is in the CRL served at its CRLDP within the configured delay; untouched
shards wait for their periodic regeneration; ``run_crl_loop`` runs until stopped; ``candor crl generate``."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

from crl_support import crldp_url, generator_for, published, revoke_certificate, shard_in
from cryptography import x509
from issuing import BASE_URL, CA, build_home
from starlette.testclient import TestClient

from candor.revocation import RevocationReason
from candor.revocation.crl.generate import CrlGenerator
from candor.revocation.crl.schedule import CrlScheduler, run_crl_loop
from candor.server.app import ServerState, create_app
from support import run_cli


def test_after_a_revocation_the_loop_serves_the_serial_at_its_crldp_within_the_delay(
    ca: CA, generator: CrlGenerator
) -> None:
    scheduler = CrlScheduler(generator)
    scheduler.tick()  # everything published once
    assert scheduler.tick() == []  # nothing is due a moment later
    certificate = ca.issue(["loop.example.com"]).certificate
    ca.clock.advance(timedelta(seconds=5))
    revoked_at = ca.clock.now()
    revoke_certificate(ca, certificate, RevocationReason.KEY_COMPROMISE)
    ca.clock.advance(generator.settings.dirty_within)
    results = scheduler.tick()
    shard = shard_in(crldp_url(certificate))
    assert [(r.shard, r.published) for r in results] == [(shard, True)]  # only the dirty shard
    state = ServerState(db=ca.db, clock=ca.clock, public_dir=ca.home / "public", base_url=BASE_URL)
    with TestClient(create_app(state)) as client:
        body = client.get(crldp_url(certificate).removeprefix(BASE_URL)).content
    crl = x509.load_der_x509_crl(body)
    assert crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None
    assert crl.last_update_utc - revoked_at <= generator.settings.dirty_within


def test_every_shard_is_regenerated_after_the_period(ca: CA, generator: CrlGenerator) -> None:
    scheduler = CrlScheduler(generator)
    for issuer_id in generator.crl_issuers():
        generator.generate_all(issuer_id)  # every shard at the same thisUpdate
    ca.clock.advance(generator.settings.regenerate_every - timedelta(seconds=1))
    assert scheduler.tick() == []
    ca.clock.advance(timedelta(seconds=1))
    regenerated = scheduler.tick()
    assert sorted(r.shard for r in regenerated if r.issuer == "tls-e1") == list(range(16))
    # every TLS issuing CA, and the time-stamping CA's one CRL (CSBR 4.9.7)
    assert {r.issuer for r in regenerated} == {"tls-e1", "tls-r1", "tsa-ca1"}
    assert [r.shard for r in regenerated if r.issuer == "tsa-ca1"] == [0]


def test_run_crl_loop_picks_up_a_revocation_and_stops_on_its_event(ca: CA) -> None:
    generator = generator_for(ca, dirty_within=timedelta(milliseconds=50))
    CrlScheduler(generator).tick()
    certificate = ca.issue(["running-loop.example.com"]).certificate
    stop = threading.Event()
    thread = threading.Thread(target=run_crl_loop, args=(generator, stop))
    thread.start()
    try:
        revoke_certificate(ca, certificate, RevocationReason.SUPERSEDED)
        shard = shard_in(crldp_url(certificate))
        deadline = time.monotonic() + 10
        while published(ca, shard).get_revoked_certificate_by_serial_number(certificate.serial_number) is None:
            assert time.monotonic() < deadline, "the loop did not regenerate the dirty shard"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_cli_generates_every_shard_and_shows_progress(tmp_path: Path) -> None:
    home = build_home(tmp_path / "home")  # the CLI's clock is the system's: a CA of its own
    result = run_cli("--data-dir", home, "crl", "generate", "--issuer", "tls-e1", "--all")
    assert result.code == 0, result.err
    lines = [line for line in result.out.splitlines() if line.startswith("crl tls-e1/")]
    assert len(lines) == 16 and all("entries/s" in line and "published" in line for line in lines)
    assert (home / "public" / "crl" / "tls-e1" / "15.crl").is_file()
    due = run_cli("--data-dir", home, "crl", "generate")
    assert due.code == 0 and "crl tls-e1/" not in due.out  # nothing of tls-e1 is due right after
    assert run_cli("--data-dir", home, "crl", "generate", "--issuer", "nope", "--all").code == 6
