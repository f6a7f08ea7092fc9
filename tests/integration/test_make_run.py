"""Acceptance 1: on a fresh copy of the tree, `make run` installs, initialises and serves; the printed AIA URL
serves the intermediate's DER."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _fresh_copy(destination: Path) -> Path:
    """The tree as a clone would have it: tracked and new files, nothing ignored (no .venv, no data)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_make_run_serves_the_intermediate_at_its_printed_aia_url(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    tree = _fresh_copy(tmp_path / "candor")
    assert not (tree / ".venv").exists()
    port = _free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "CANDOR_HOME"))}
    process = subprocess.Popen(
        ["make", "run", f"PORT={port}"],
        cwd=tree, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    output: list[str] = []
    try:
        url = None
        deadline = time.monotonic() + 600
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if "AIA caIssuers" in line and "tls-e1:" in line:
                url = line.rsplit(" ", 1)[-1].strip()
                break
        assert url is not None, "".join(output[-40:])
        assert url == f"http://127.0.0.1:{port}/issuers/tls-e1.der"
        for _ in range(100):
            try:
                with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback, our own server)
                    body, media_type = response.read(), response.headers["Content-Type"]
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the server never answered at " + url)
        assert media_type == "application/pkix-cert"
        assert body == (tree / ".candor" / "public" / "issuers" / "tls-e1.der").read_bytes()
        certificate = x509.load_der_x509_certificate(body)
        assert certificate.subject.rfc4514_string() == "CN=Candor Local TLS E1,O=Candor Local PKI,C=XX"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
