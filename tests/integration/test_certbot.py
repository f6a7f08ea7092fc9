"""Issue 4 acceptance 1 (first part): the certbot client, unmodified, against `candor serve` over HTTPS:
`certonly --standalone` with http-01 on port 80 for two names, a renewal, and a revocation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from acme_clients import LoopbackPool, Served, check_issued, run_client, serving
from cryptography import x509

from support import record_issued, run_cli

pytestmark = pytest.mark.slow
NAMES = ("www.example.com", "example.com")


def _certbot() -> str:
    found = shutil.which("certbot", path=str(Path(sys.executable).parent)) or shutil.which("certbot")
    if found is None:
        pytest.skip("certbot is not installed (pip install certbot)")
    return found


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """`candor serve` whose validation may reach one loopback address, where certbot's standalone server will
    answer."""
    with serving(tmp_path, NAMES, LoopbackPool(first=180, last=199)) as served:
        yield served


def _run_certbot(served: Served, work: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ, REQUESTS_CA_BUNDLE=str(served.root_pem))
    command = [
        _certbot(), *extra, "--non-interactive", "--agree-tos", "-m", "ops@example.com",
        "--server", served.directory, "--config-dir", str(work / "config"), "--work-dir", str(work / "work"),
        "--logs-dir", str(work / "logs"), "--http-01-address", served.answer_ip, "--http-01-port", "80",
    ]  # fmt: skip
    return run_client(command, env=environ)


def test_certbot_standalone_http01_two_names_then_renew(served: Served, tmp_path: Path) -> None:
    work = tmp_path / "certbot"
    names = [arg for name in NAMES for arg in ("-d", name)]
    issued = _run_certbot(served, work, "certonly", "--standalone", *names)
    assert issued.returncode == 0, issued.stdout + issued.stderr
    live = work / "config" / "live" / NAMES[0]
    first = check_issued(served, live / "cert.pem", live / "chain.pem", NAMES, tmp_path / "verify")

    renewed = _run_certbot(served, work, "renew", "--force-renewal", "--no-random-sleep-on-renew")
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    second = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())
    assert second.serial_number != first.serial_number
    chain = tuple(x509.load_pem_x509_certificates((live / "chain.pem").read_bytes()))
    record_issued(second, chain, served.root_pem, local_urls=True)

    revoked = _run_certbot(
        served, work, "revoke", "--cert-path", str(live / "cert.pem"), "--reason", "keycompromise",
        "--no-delete-after-revoke",
    )  # fmt: skip
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    audit = run_cli("--data-dir", served.home, "audit", "verify")
    assert audit.code == 0, audit.err
