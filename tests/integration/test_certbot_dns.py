"""Issue 4 acceptance 1 (second part): certbot with its dns-rfc2136 plugin gets a wildcard certificate through
dns-01 from `candor serve`, against a real bind9 that takes certbot's TSIG-signed updates, signs them (DNSSEC),
and answers Candor's validation client, which validates every answer from the test root's trust anchor."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from acme_clients import LoopbackPool, Served, check_issued, run_client, serving
from bind9 import Named, running_named

from support import run_cli

pytestmark = pytest.mark.slow
NAMES = ("*.dyn.test", "dyn.test")


def _certbot() -> str:
    found = shutil.which("certbot", path=str(Path(sys.executable).parent)) or shutil.which("certbot")
    if found is None:
        pytest.skip("certbot is not installed (pip install certbot certbot-dns-rfc2136)")
    return found


@pytest.fixture
def dns_and_ca(tmp_path: Path) -> Iterator[tuple[Named, Served]]:
    (tmp_path / "named").mkdir()
    with running_named(tmp_path / "named") as named:
        nameserver = f"{named.address}:{named.port}"
        pool = LoopbackPool(first=150, last=159)
        with serving(tmp_path, (), pool, nameservers=[nameserver], trust_anchors=named.trust_anchors) as served:
            yield named, served


def _credentials(named: Named, path: Path) -> Path:
    path.write_text(
        f"dns_rfc2136_server = {named.address}\n"
        f"dns_rfc2136_port = {named.port}\n"
        f"dns_rfc2136_name = {named.tsig_key_name}\n"
        f"dns_rfc2136_secret = {named.tsig_secret}\n"
        f"dns_rfc2136_algorithm = {named.tsig_algorithm.upper()}\n"
    )
    path.chmod(0o600)  # certbot refuses credentials others can read
    return path


def test_certbot_dns_rfc2136_gets_a_wildcard(dns_and_ca: tuple[Named, Served], tmp_path: Path) -> None:
    named, served = dns_and_ca
    work = tmp_path / "certbot"
    environ = dict(os.environ, REQUESTS_CA_BUNDLE=str(served.root_pem))
    command = [
        _certbot(), "certonly", "--non-interactive", "--agree-tos", "-m", "ops@example.com",
        "--server", served.directory, "--config-dir", str(work / "config"), "--work-dir", str(work / "work"),
        "--logs-dir", str(work / "logs"), "--dns-rfc2136",
        "--dns-rfc2136-credentials", str(_credentials(named, tmp_path / "rfc2136.ini")),
        "--dns-rfc2136-propagation-seconds", "1", "--cert-name", "wild",
        *(arg for name in NAMES for arg in ("-d", name)),
    ]  # fmt: skip
    issued = run_client(command, env=environ)
    assert issued.returncode == 0, issued.stdout + issued.stderr
    live = work / "config" / "live" / "wild"
    check_issued(served, live / "cert.pem", live / "chain.pem", NAMES, tmp_path / "check")
    audit = run_cli("--data-dir", served.home, "audit", "verify")
    assert audit.code == 0, audit.err


def test_without_the_txt_record_a_wildcard_is_not_issued(dns_and_ca: tuple[Named, Served], tmp_path: Path) -> None:
    """certbot's manual plugin with a hook that publishes nothing: the dns-01 challenge fails, no certificate."""
    named, served = dns_and_ca
    work = tmp_path / "certbot"
    hook = tmp_path / "hook.sh"
    hook.write_text("#!/bin/sh\nexit 0\n")
    hook.chmod(0o755)
    command = [
        _certbot(), "certonly", "--non-interactive", "--agree-tos", "-m", "ops@example.com",
        "--server", served.directory, "--config-dir", str(work / "config"), "--work-dir", str(work / "work"),
        "--logs-dir", str(work / "logs"), "--manual", "--preferred-challenges", "dns",
        "--manual-auth-hook", str(hook), "-d", "*.dyn.test",
    ]  # fmt: skip
    refused = run_client(command, env=dict(os.environ, REQUESTS_CA_BUNDLE=str(served.root_pem)))
    assert refused.returncode != 0
    output = refused.stdout + refused.stderr
    assert "Type:   dns" in output and "_acme-challenge.dyn.test" in output, output
    assert not (work / "config" / "live").exists()
    assert named.port > 0  # the DNS server answered: it had no record to give
