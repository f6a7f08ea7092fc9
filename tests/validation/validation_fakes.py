"""Small fake servers for the validator tests: an HTTP(S) server and an acme-tls/1 responder, on loopback.

Each server runs in threads of this process, listens on one 127.0.0.x (or ::1) address and port, and keeps a
log of what reached it, so a test can prove that nothing arrived on a port the validator must never use.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.server
import socket
import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ACME_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")  # RFC 8737 §6.1, written out independently
TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"  # RFC 8555 §8.3 example token
THUMBPRINT = "nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ"  # RFC 8555 §8.1 example thumbprint (43 characters)
KEY_AUTHORIZATION = f"{TOKEN}.{THUMBPRINT}"
CHALLENGE_PATH = f"/.well-known/acme-challenge/{TOKEN}"


# --- loopback addresses ------------------------------------------------------------------------------


def _free(ip: str, ports: Sequence[int]) -> bool:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    for port in ports:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((ip, port))
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
                    return False
                raise
    return True


class LoopbackPool:
    """Hands out 127.0.0.x addresses on which ports 80 and 443 are free right now, round robin over a range.

    Consecutive calls return different addresses, so the servers of one test never meet; an address comes
    round again only after the whole range, when the test that used it has closed its servers."""

    def __init__(self, first: int = 11, last: int = 250) -> None:
        self._octets = list(range(first, last + 1))
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> str:
        with self._lock:
            for _ in self._octets:
                ip = f"127.0.0.{self._octets[self._next]}"
                self._next = (self._next + 1) % len(self._octets)
                if _free(ip, (80, 443)):
                    return ip
        raise RuntimeError("no 127.0.0.x address with ports 80 and 443 free for the validation tests")


def ipv6_loopback_free() -> bool:
    try:
        return _free("::1", (80, 443))
    except OSError:
        return False


# --- certificates --------------------------------------------------------------------------------------


def write_certificate(
    directory: Path,
    sans: Sequence[x509.GeneralName],
    *,
    acme_value: bytes | None = None,
    acme_critical: bool = True,
    name: str = "server",
) -> tuple[Path, Path]:
    """A self-signed P-256 certificate with *sans* and, if *acme_value* is given, an acmeIdentifier extension
    whose extnValue is exactly *acme_value*. Returns the paths of the certificate and key PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme test")])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=7))
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    if acme_value is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(ACME_IDENTIFIER_OID, acme_value), critical=acme_critical
        )
    certificate = builder.sign(key, hashes.SHA256())
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def acme_digest(key_authorization: str = KEY_AUTHORIZATION) -> bytes:
    """The extnValue of a correct acmeIdentifier: DER OCTET STRING (04, length 32) of SHA-256(keyAuthorization)."""
    return b"\x04\x20" + hashlib.sha256(key_authorization.encode()).digest()


def server_context(cert: Path, key: Path, alpn: Sequence[str] = ()) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


# --- HTTP(S) -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class ServerLog:
    connections: int = 0
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Host header)
    server_names: list[str | None] = field(default_factory=list)  # TLS SNI, for an HTTPS server
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, ip: str, port: int, routes: Mapping[str, Route], tls: ssl.SSLContext | None) -> None:
        self.address_family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        self.routes = dict(routes)
        self.tls = tls
        self.log = ServerLog()
        if tls is not None:
            tls.sni_callback = self._record_sni
        super().__init__((ip, port), _Handler)

    def _record_sni(self, _sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext) -> None:
        with self.log.lock:
            self.log.server_names.append(name)

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self.log.lock:
            self.log.connections += 1
        request.settimeout(5)
        if self.tls is not None:
            with self.tls.wrap_socket(request, server_side=True) as tls:
                super().finish_request(tls, client_address)
        else:
            super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        with self.log.lock:
            self.log.errors.append("handler error")


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        log = self.server.log
        with log.lock:
            log.requests.append((self.path, self.headers.get("Host")))
        route = self.server.routes.get(self.path, Route(404, b"not found"))
        self.send_response(route.status)
        for name, value in route.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(route.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(route.body)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        return


class FakeWebServer:
    """An HTTP server (HTTPS when given a TLS context) on ``ip:port`` serving fixed routes."""

    def __init__(self, ip: str, port: int, routes: Mapping[str, Route], *, tls: ssl.SSLContext | None = None) -> None:
        self._server = _Server(ip, port, routes, tls)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()

    @property
    def log(self) -> ServerLog:
        return self._server.log

    @property
    def routes(self) -> dict[str, Route]:
        """The live route table: add to it while the server runs."""
        return self._server.routes

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeWebServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


# --- acme-tls/1 ---------------------------------------------------------------------------------------------


@dataclass
class HandshakeLog:
    connections: int = 0
    server_names: list[str | None] = field(default_factory=list)
    selected: list[str | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class FakeTlsServer:
    """Accepts TLS connections on ``ip:port``, completes the handshake with *context* and closes."""

    def __init__(self, ip: str, port: int, context: ssl.SSLContext) -> None:
        self.log = HandshakeLog()
        self._lock = threading.Lock()
        context.sni_callback = self._record_sni
        self._context = context
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((ip, port))
        self._listener.listen(8)
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _record_sni(self, _sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext) -> None:
        with self._lock:
            self.log.server_names.append(name)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.log.connections += 1
            conn.settimeout(5)
            try:
                with self._context.wrap_socket(conn, server_side=True) as tls:
                    with self._lock:
                        self.log.selected.append(tls.selected_alpn_protocol())
                    with contextlib.suppress(OSError):
                        tls.recv(1)  # wait for the client to close
            except OSError as exc:
                with self._lock:
                    self.log.errors.append(type(exc).__name__)
            finally:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def __enter__(self) -> FakeTlsServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
