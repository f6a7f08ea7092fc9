"""Issue 4 acceptance 2: the lego client (Debian's 4.9.1), unmodified, gets certificates from `candor serve`
with tls-alpn-01 (its own responder on port 443) and with http-01 (its own server on port 80), then renews."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from acme_clients import LoopbackPool, Served, check_issued, client, run_client, serving
from cryptography.hazmat.primitives.asymmetric import rsa

from support import run_cli

pytestmark = pytest.mark.slow
HTTP_NAMES = ("lego-http.example.com", "www.lego-http.example.com")
TLS_NAMES = ("lego-alpn.example.com", "www.lego-alpn.example.com")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("lego"), HTTP_NAMES + TLS_NAMES, LoopbackPool(first=160, last=169)) as s:
        yield s


def _lego(served: Served, work: Path, names: tuple[str, ...], *extra: str) -> subprocess.CompletedProcess[str]:
    """lego with only the solver that *extra* enables (lego tries no challenge type it was not given)."""
    environ = dict(os.environ, LEGO_CA_CERTIFICATES=str(served.root_pem))
    domains = [arg for name in names for arg in ("--domains", name)]
    command = [
        client("lego"), "--server", served.directory, "--accept-tos", "--email", "ops@example.com",
        "--path", str(work), *domains, *extra,
    ]  # fmt: skip
    return run_client(command, env=environ)


def _saved(work: Path, names: tuple[str, ...]) -> tuple[Path, Path]:
    """lego's certificate (the leaf followed by its issuer) and issuer files for a certificate named by names[0]."""
    return work / "certificates" / f"{names[0]}.crt", work / "certificates" / f"{names[0]}.issuer.crt"


def test_lego_http01_two_names_then_forced_renewal(served: Served, tmp_path: Path) -> None:
    work, http = tmp_path / "lego", ["--http", "--http.port", f"{served.answer_ip}:80"]
    issued = _lego(served, work, HTTP_NAMES, *http, "run")
    assert issued.returncode == 0, issued.stdout + issued.stderr
    for name in HTTP_NAMES:
        assert f"[{name}] acme: Trying to solve HTTP-01" in issued.stderr, issued.stderr
    first = check_issued(served, *_saved(work, HTTP_NAMES), HTTP_NAMES, tmp_path / "verify")

    renewed = _lego(served, work, HTTP_NAMES, *http, "renew", "--days", "1000", "--no-random-sleep")
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    second = check_issued(served, *_saved(work, HTTP_NAMES), HTTP_NAMES, tmp_path / "verify")
    assert second.serial_number != first.serial_number
    audit = run_cli("--data-dir", served.home, "audit", "verify")
    assert audit.code == 0, audit.err


def test_lego_tls_alpn01_two_names_rsa_key(served: Served, tmp_path: Path) -> None:
    work = tmp_path / "lego"
    tls = ["--tls", "--tls.port", f"{served.answer_ip}:443", "--key-type", "rsa2048"]
    issued = _lego(served, work, TLS_NAMES, *tls, "run")
    assert issued.returncode == 0, issued.stdout + issued.stderr
    for name in TLS_NAMES:
        assert f"[{name}] acme: Trying to solve TLS-ALPN-01" in issued.stderr, issued.stderr
    certificate = check_issued(served, *_saved(work, TLS_NAMES), TLS_NAMES, tmp_path / "verify")
    key = certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey), key
    assert key.key_size == 2048
    audit = run_cli("--data-dir", served.home, "audit", "verify")
    assert audit.code == 0, audit.err
