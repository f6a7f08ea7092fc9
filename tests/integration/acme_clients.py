"""What the tests that drive real ACME clients (certbot, lego, dehydrated, uacme) against `candor serve` share.

:func:`serving` starts `candor serve` on a fresh data directory whose validation may reach one loopback address,
given by the caller's :class:`LoopbackPool` range, for the names the test will request; the client (or
:class:`ChallengeWebServer`, the user's web server) answers challenges there, on port 80 (http-01) or 443
(tls-alpn-01), the only ports Candor's validation connects to. :func:`check_issued` checks what a client saved
and records it for tests/zz_relint, which lints every issued certificate again at the end of the session.
"""

from __future__ import annotations

import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "validation"))

from bind9 import unavailable  # noqa: E402
from validation_fakes import LoopbackPool  # noqa: E402

from support import openssl, record_issued, run_cli  # noqa: E402

__all__ = [
    "ChallengeWebServer",
    "LoopbackPool",
    "Served",
    "check_issued",
    "client",
    "dns_names",
    "free_port",
    "run_client",
    "serving",
    "unavailable",
]

START_TIMEOUT = 120.0  # seconds for `candor serve` to announce its ACME directory
CLIENT_TIMEOUT = 300.0  # seconds for one client command


@dataclass(frozen=True)
class Served:
    home: Path
    directory: str  # the ACME directory URL, https://127.0.0.1:<port>/acme/directory
    answer_ip: str  # where validation connects for every name in the hosts table

    @property
    def root_pem(self) -> Path:
        return self.home / "public" / "issuers" / "root-x1.pem"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def client(name: str) -> str:
    """The path of the ACME client *name*, or a skip (a failure under CANDOR_REQUIRE_ALL=1) if it is missing."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        unavailable(f"{name} is not installed (Debian: apt-get install {name})")
    assert found is not None
    return found


@contextmanager
def serving(
    parent: Path,
    names: Iterable[str],
    pool: LoopbackPool,
    *,
    nameservers: Iterable[str] = (),
    trust_anchors: Iterable[str] = (),
    acme_settings: str = "",
    replacements: Mapping[str, str] | None = None,
) -> Iterator[Served]:
    """`candor serve` on a fresh data directory in *parent* whose validation sends every one of *names* to one
    loopback address taken from *pool* and, when given, asks *nameservers* ("ip:port") for everything else,
    DNSSEC-validated from *trust_anchors*; *acme_settings* are extra lines for [acme]. Stopped (its whole
    process group) on exit."""
    home, http_port, acme_port = parent / "home", free_port(), free_port()
    assert run_cli("--data-dir", home, "init", "--port", str(http_port), "--acme-port", str(acme_port)).code == 0
    answer_ip = pool.take()
    config = (home / "candor.toml").read_text()
    hosts = ", ".join(f'"{name}" = ["{answer_ip}"]' for name in names)
    config = config.replace("allow_loopback = false", f"allow_loopback = true\nhosts = {{ {hosts} }}")
    if nameservers:
        listed = ", ".join(f'"{entry}"' for entry in nameservers)
        anchors = ", ".join(f'"{anchor}"' for anchor in trust_anchors)
        config = config.replace("nameservers = []", f"nameservers = [{listed}]\ntrust_anchors = [{anchors}]")
    if acme_settings:
        config = config.replace("[acme]\n", f"[acme]\n{acme_settings}\n", 1)
    for old, new in (replacements or {}).items():
        assert old in config, f"candor.toml has no {old!r}"
        config = config.replace(old, new, 1)
    (home / "candor.toml").write_text(config)
    process = subprocess.Popen(
        [sys.executable, "-m", "candor", "--data-dir", str(home), "serve"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    directory = None
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    while directory is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if "ACME directory:" in line:
            directory = line.split("ACME directory:")[1].strip()
    try:
        assert directory is not None, "candor serve did not announce its ACME directory"
        yield Served(home, directory, answer_ip)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        process.stdout.close()


def run_client(command: list[str], *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=CLIENT_TIMEOUT, check=False, stdin=subprocess.DEVNULL
    )


def dns_names(certificate: x509.Certificate) -> list[str]:
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sorted(sans.get_values_for_type(x509.DNSName))


def check_issued(
    served: Served, certificate: Path, chain: Path, names: Iterable[str], scratch: Path
) -> x509.Certificate:
    """The first certificate in *certificate* names exactly *names*, and `openssl verify` accepts it as a TLS
    server certificate chaining through the certificates in *chain* (the leaf, if repeated there, is dropped)
    to Candor's root. Recorded for the end-of-session relint; returned."""
    leaf, *_ = x509.load_pem_x509_certificates(certificate.read_bytes())
    intermediates = tuple(c for c in x509.load_pem_x509_certificates(chain.read_bytes()) if c != leaf)
    assert dns_names(leaf) == sorted(names)
    assert intermediates, f"{chain} holds no issuer certificate"
    scratch.mkdir(parents=True, exist_ok=True)
    leaf_file, chain_file = scratch / f"{leaf.serial_number:x}.pem", scratch / f"{leaf.serial_number:x}-chain.pem"
    leaf_file.write_bytes(leaf.public_bytes(Encoding.PEM))
    chain_file.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in intermediates))
    verified = openssl(
        "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", served.root_pem,
        "-untrusted", chain_file, leaf_file,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    record_issued(leaf, intermediates, served.root_pem, local_urls=True)
    return leaf


class _ChallengeHandler(http.server.BaseHTTPRequestHandler):
    TOKEN: ClassVar[re.Pattern[str]] = re.compile(r"/\.well-known/acme-challenge/([A-Za-z0-9_-]+)")
    server: _ChallengeHTTPServer

    def do_GET(self) -> None:
        match = self.TOKEN.fullmatch(self.path)
        response = self.server.webroot / match.group(1) if match else None
        if response is None or not response.is_file():
            self.send_error(404)
            return
        body = response.read_bytes()
        self.server.answered.append(response.name)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: what matters is kept in server.answered


class _ChallengeHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], webroot: Path) -> None:
        super().__init__(address, _ChallengeHandler)
        self.webroot = webroot
        self.answered: list[str] = []  # the tokens whose key authorization was sent


class ChallengeWebServer:
    """The user's web server for http-01: serves /.well-known/acme-challenge/<token> from the files a client
    writes into *webroot*, on *ip* port 80, and notes the tokens it answered (:meth:`answered`)."""

    def __init__(self, ip: str, webroot: Path) -> None:
        webroot.mkdir(parents=True, exist_ok=True)
        self._server = _ChallengeHTTPServer((ip, 80), webroot)
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"http-01 {ip}", daemon=True)

    def answered(self) -> set[str]:
        """The challenge tokens for which a key authorization was sent (validation fetched them)."""
        return set(self._server.answered)

    def __enter__(self) -> ChallengeWebServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
