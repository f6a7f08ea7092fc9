"""Issue 4 acceptance 1 (first part): the certbot client, unmodified, against `candor serve` over HTTPS:
`certonly --standalone` with http-01 on port 80 for two names, a renewal, and a revocation."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "validation"))

from validation_fakes import LoopbackPool  # noqa: E402

from support import openssl, record_issued, run_cli  # noqa: E402

pytestmark = pytest.mark.slow
NAMES = ("www.example.com", "example.com")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _certbot() -> str:
    found = shutil.which("certbot", path=str(Path(sys.executable).parent)) or shutil.which("certbot")
    if found is None:
        pytest.skip("certbot is not installed (pip install certbot)")
    return found


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    """`candor serve` on a fresh data directory whose validation may reach one loopback address, where
    certbot's standalone server will answer."""
    home, http_port, acme_port = tmp_path / "home", _free_port(), _free_port()
    assert run_cli("--data-dir", home, "init", "--port", str(http_port), "--acme-port", str(acme_port)).code == 0
    answer_ip = LoopbackPool(first=180, last=199).take()
    config = (home / "candor.toml").read_text()
    hosts = ", ".join(f'"{name}" = ["{answer_ip}"]' for name in NAMES)
    config = config.replace("allow_loopback = false", f"allow_loopback = true\nhosts = {{ {hosts} }}")
    (home / "candor.toml").write_text(config)
    process = subprocess.Popen(
        [sys.executable, "-m", "candor", "--data-dir", str(home), "serve"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    directory = None
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    while directory is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if "ACME directory:" in line:
            directory = line.split("ACME directory:")[1].strip()
    try:
        assert directory is not None, "candor serve did not announce its ACME directory"
        yield home, directory, answer_ip
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        process.stdout.close()


def _run_certbot(
    home: Path, directory: str, answer_ip: str, work: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ, REQUESTS_CA_BUNDLE=str(home / "public" / "issuers" / "root-x1.pem"))
    command = [
        _certbot(), *extra, "--non-interactive", "--agree-tos", "-m", "ops@example.com",
        "--server", directory, "--config-dir", str(work / "config"), "--work-dir", str(work / "work"),
        "--logs-dir", str(work / "logs"), "--http-01-address", answer_ip, "--http-01-port", "80",
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=environ, timeout=300, check=False)


def test_certbot_standalone_http01_two_names_then_renew(served: tuple[Path, str, str], tmp_path: Path) -> None:
    home, directory, answer_ip = served
    work = tmp_path / "certbot"
    names = [arg for name in NAMES for arg in ("-d", name)]
    issued = _run_certbot(home, directory, answer_ip, work, "certonly", "--standalone", *names)
    assert issued.returncode == 0, issued.stdout + issued.stderr
    live = work / "config" / "live" / NAMES[0]
    first = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())
    sans = first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == sorted(NAMES)
    verified = openssl(
        "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", home / "public" / "issuers" / "root-x1.pem",
        "-untrusted", live / "chain.pem", live / "cert.pem",
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr

    renewed = _run_certbot(home, directory, answer_ip, work, "renew", "--force-renewal", "--no-random-sleep-on-renew")
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    second = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())
    assert second.serial_number != first.serial_number
    chain = tuple(x509.load_pem_x509_certificates((live / "chain.pem").read_bytes()))
    for certificate in (first, second):
        record_issued(certificate, chain, home / "public" / "issuers" / "root-x1.pem", local_urls=True)

    revoked = _run_certbot(
        home, directory, answer_ip, work, "revoke", "--cert-path", str(live / "cert.pem"),
        "--reason", "keycompromise", "--no-delete-after-revoke",
    )  # fmt: skip
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    audit = run_cli("--data-dir", home, "audit", "verify")
    assert audit.code == 0, audit.err
